"""The OS keyring (Secret Service, macOS Keychain, Windows Credential Locker) that holds
the SMTP password and the OAuth2 refresh token `mailer login` stores.

Its own module so that the password sources (credentials.py) and the OAuth2 sign-in
(oauth.py) both use it without importing each other.  keyring itself loads when it is
asked (~20 ms, and more to find its backend): a send without a login never does.
"""

from __future__ import annotations

import contextlib
import threading

from ..errors import ConfigError
from ..sanitize import clean

PASSWORD_SERVICE = "mailer-smtp"  # keyring service of SMTP passwords; the user name is the key


def keyring_account(host: str, username: str) -> str:
    """One keyring entry per login and server: the same address may log in to two."""
    return f"{username}@{host}"


def keyring_get(service: str, account: str) -> str | None:
    """The stored secret; None when there is none or no keyring can be reached
    (a headless machine without Secret Service is normal, not an error)."""
    import keyring.errors

    try:
        return keyring.get_password(service, account)
    except keyring.errors.KeyringError:
        return None
    except RuntimeError:  # some backends raise bare RuntimeErrors when D-Bus is missing
        return None


def find_keyring_meanwhile(lock: threading.Lock) -> None:
    """Load keyring and find this system's backend in a thread, reading nothing
    (~0.1 s that the first login, and with it every connection, would otherwise
    wait for).  It holds `lock`, so a lookup under the same lock waits for it
    instead of doing it twice; a failure is left for that lookup to meet and
    report as it always does."""
    threading.Thread(target=_find_keyring, args=(lock,), name="keyring").start()


def _find_keyring(lock: threading.Lock) -> None:
    import keyring

    with lock, contextlib.suppress(Exception):
        keyring.get_keyring()


def keyring_set(service: str, account: str, secret: str) -> None:
    import keyring.errors

    try:
        keyring.set_password(service, account, secret)
    except (keyring.errors.KeyringError, RuntimeError) as err:
        raise ConfigError(
            f"Cannot store the secret in the OS keyring: {_keyring_problem(err)}. Set "
            f"MAILER_SMTP_PASSWORD_COMMAND (e.g. `pass show mail/smtp`) in .env instead, "
            f"or MAILER_SMTP_PASSWORD in a .env only you can read."
        ) from None


def _keyring_problem(err: Exception) -> str:
    """Why the keyring failed, in a clause: without any backend keyring's own text is a
    paragraph about installing backends (a headless machine without Secret Service)."""
    import keyring.backends.fail

    if isinstance(keyring.get_keyring(), keyring.backends.fail.Keyring):
        return "this machine has none (no Secret Service, Keychain or Credential Locker)"
    return f"{keyring_name()}: {clean(str(err)).rstrip('.')}"


def keyring_delete(service: str, account: str) -> bool:
    """Remove an entry; False when there was none."""
    import keyring.errors

    try:
        keyring.delete_password(service, account)
    except keyring.errors.PasswordDeleteError:
        return False
    except (keyring.errors.KeyringError, RuntimeError) as err:
        raise ConfigError(
            f"Cannot reach the OS keyring to remove the secret: {_keyring_problem(err)}."
        ) from None
    return True


def keyring_name() -> str:
    import keyring

    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"
