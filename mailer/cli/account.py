"""Commands: `init`, `login`, `logout`, `check`: from nothing to a verified account.

Thin over accounts/setup.py (presets and files), accounts/credentials.py (keyring),
accounts/oauth.py (sign-in flows) and accounts/check.py (the server check).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import config
from ..accounts.providers import PROVIDERS
from ..accounts.setup import port_number, security_mode, sender_address
from ..compose.profile import NETWORKS
from ..config import SmtpSettings
from ..errors import ConfigError
from ..models import Contact
from .app import handle_errors, main, profile_if_here, profile_option

if TYPE_CHECKING:
    from ..accounts.setup import Account, Person

Check = Callable[[str], str]  # an answer -> its value; ConfigError says what is wrong


def _settings(env_file: Path | None = None) -> tuple[dict[str, str], SmtpSettings]:
    env = config.environment(env_file)
    settings = config.smtp_settings(env)
    if not settings.username:
        raise ConfigError("MAILER_SMTP_USERNAME is not set: whose login is this? Run "
                          "`mailer init`, or set it in .env.")
    return env, settings


# -- login / logout ----------------------------------------------------------------


def login_account(settings: SmtpSettings, env: dict[str, str], *, open_browser: bool) -> None:
    # the keyring and the sign-in flows load only here, not for every `mailer --help`
    from ..accounts import oauth
    from ..accounts.keystore import PASSWORD_SERVICE, keyring_account, keyring_name, keyring_set
    from ..accounts.oauth import Grant

    if settings.auth == "oauth2":
        o = oauth.oauth_settings(env, settings.host)
        if o.provider.flow == "device":
            tokens = oauth.device_flow(o, click.echo)
            secret = ""
        else:
            secret = o.client_secret or _read_secret(
                "Client secret of your Google desktop OAuth client")
            tokens = oauth.loopback_flow(o, click.echo, client_secret=secret,
                                         login_hint=settings.username,
                                         open_browser=open_browser)
        # a secret from the environment stays there; a typed one is kept with the token
        oauth.save_grant(settings.username, Grant(tokens.refresh_token, o.client_id,
                                                  "" if o.client_secret else secret))
        click.echo(f"Signed in as {settings.username}; the refresh token is in the OS keyring "
                   f"({keyring_name()}).")
        return
    if env.get("MAILER_SMTP_PASSWORD_COMMAND", "").strip():
        click.echo("Note: MAILER_SMTP_PASSWORD_COMMAND is set and is asked before the keyring.")
    password = _read_secret(f"Password for {settings.username} at {settings.host}")
    keyring_set(PASSWORD_SERVICE, keyring_account(settings.host, settings.username), password)
    click.echo(f"Stored the password for {settings.username} at {settings.host} in the OS "
               f"keyring ({keyring_name()}).")
    if env.get("MAILER_SMTP_PASSWORD"):
        click.echo("MAILER_SMTP_PASSWORD is no longer needed: remove it from .env.")


def _read_secret(prompt: str) -> str:
    """Prompted without echo on a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        value = click.prompt(prompt, hide_input=True, default="", show_default=False)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise ConfigError("Nothing was entered; nothing was stored. Type it at the prompt, "
                          "or give it as the first line of input: `pass show mail/smtp | "
                          "mailer login`.")
    return str(value)


@main.command()
@click.option("--no-browser", is_flag=True, help="Only print the sign-in address (Google).")
@handle_errors
def login(no_browser: bool) -> None:
    """Store your SMTP password in the OS keyring, or sign in with OAuth2 (MAILER_SMTP_AUTH).

    The password is asked for without echo (or read from standard input), never
    taken as an argument."""
    env, settings = _settings()
    login_account(settings, env, open_browser=not no_browser)
    click.echo("Next: `mailer check`.")


@main.command()
@handle_errors
def logout() -> None:
    """Remove the stored password and OAuth2 sign-in of the configured account."""
    from ..accounts import oauth
    from ..accounts.keystore import PASSWORD_SERVICE, keyring_account, keyring_delete

    _, settings = _settings()
    removed = []
    if keyring_delete(PASSWORD_SERVICE, keyring_account(settings.host, settings.username)):
        removed.append("password")
    if oauth.forget_grant(settings.username):
        removed.append("OAuth2 sign-in")
    if removed:
        click.echo(f"Removed the {' and the '.join(removed)} of {settings.username} from the OS "
                   f"keyring.")
    else:
        click.echo(f"Nothing stored for {settings.username} in the OS keyring.")


# -- check -------------------------------------------------------------------------


def run_check(settings: SmtpSettings, profile_path: Path | None, send_test: bool) -> bool:
    import asyncio

    from ..accounts.check import check_account, largest_message, probe_contact
    from ..compose.message import Composer
    from ..compose.profile import load_profile

    largest = None
    test = None
    if profile_path is not None:
        profile = load_profile(profile_path)
        composer = Composer(profile)
        largest = largest_message([composer.render(probe_contact(lang))
                                   for lang in composer.languages])
        if send_test:
            test = composer.render(Contact(email=profile.email, name=profile.name))
    elif send_test:
        raise ConfigError("--send-test needs the profile (--profile, or profile.toml here) to "
                          "render the message.")
    result = asyncio.run(check_account(settings, click.echo, largest=largest,
                                       test_message=test))
    if not result.fits:
        click.echo("mailer: error: the message is larger than the server takes: make the "
                   "profile's photo smaller (or leave it out).", err=True)
    return result.fits


@main.command()
@profile_option(required=False, help="Your profile.toml, to check the largest message "
                "against SIZE [default: ./profile.toml if there is one].")
@click.option("--send-test", is_flag=True, help="Also send one message to your own address.")
@handle_errors
def check(profile_path: Path | None, send_test: bool) -> None:
    """Connect, log in and show what the SMTP server offers, sending nothing."""
    from ..accounts.credentials import Credentials

    settings = Credentials(config.environment()).smtp()  # without a login: checks the rest
    if not run_check(settings, profile_if_here(profile_path), send_test):
        sys.exit(1)
    click.echo("All good.")


# -- init --------------------------------------------------------------------------


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(text: str) -> str:
        if text.lower() not in choices:
            raise ConfigError(f"{text!r} is not one of {', '.join(choices)}.")
        return text.lower()
    return check


def _security_option(_ctx: click.Context, _param: click.Parameter, value: str | None
                     ) -> str | None:
    try:
        return None if value is None else security_mode(value)
    except ConfigError as err:
        raise click.BadParameter(str(err)) from None


def _port(text: str) -> str:
    return str(port_number(text))


@dataclass(frozen=True, slots=True)
class _Given:
    """`mailer init`'s options: what the user already said."""

    name: str | None
    email: str | None
    event: str | None
    lang: str | None
    channels: tuple[str, ...]
    provider: str | None
    host: str | None
    port: int | None
    security: str | None
    username: str | None
    auth: str | None
    client_id: str | None
    tenant: str | None


@dataclass(frozen=True, slots=True)
class _Interview:
    interactive: bool

    def ask(self, value: str | None, prompt: str, *, option: str, check: Check = str.strip,
            default: str | None = None, required: bool = True, asked: bool = True) -> str:
        """The option's value, else the answer (a wrong one is asked again in place),
        else the default; without a terminal a missing required value is an error."""
        if value is not None:
            try:
                return check(value.strip())
            except ConfigError as err:  # named as the option the user typed
                raise ConfigError(f"{option}: {err}") from None
        if not (self.interactive and asked):
            if default is not None or not required:
                return default or ""
            raise ConfigError(f"{option} is needed when there is no terminal to ask on: pass "
                              f"it, or run `mailer init` in a terminal to be asked (`mailer "
                              f"init --help` lists the options).")
        answer = click.prompt(prompt, default=default if default is not None else
                              ("" if not required else None), show_default=bool(default),
                              value_proc=lambda text: _again(check, text))
        return str(answer).strip()


def _again(check: Check, text: str) -> str:
    """At a prompt, a wrong answer is said and asked again (click re-asks on a UsageError)."""
    try:
        return check(text.strip())
    except ConfigError as err:
        raise click.UsageError(str(err)) from None


def _channel(text: str, option: str = "") -> tuple[str, str]:
    network, sep, value = text.partition("=")
    network = network.strip().lower()
    what = f"{option} {text!r}" if option else repr(text)
    if not sep or not value.strip():
        raise ConfigError(f"{what}: write it as NETWORK=VALUE, e.g. linkedin=alex-example.")
    if network not in NETWORKS or network == "other":
        raise ConfigError(f"{what}: {network!r} is not one of "
                          f"{', '.join(n for n in NETWORKS if n != 'other')}; any other "
                          f"channel goes into profile.toml by hand afterwards "
                          f"(network = \"other\" with a label).")
    return network, value.strip()


@main.command()
@click.option("--dir", "folder", default=Path("."), type=click.Path(file_okay=False,
              path_type=Path), help="Where to write profile.toml and .env.  [default: here]")
@click.option("--name", help="Your name, as shown in From.")
@click.option("--email", help="Your address (also your SMTP login unless --username).")
@click.option("--event", help="Where you met people, e.g. 'FOSDEM 2026'.")
@click.option("--lang", type=click.Choice(["en", "de"]), help="Mail language by default.")
@click.option("--channel", "channels", multiple=True, metavar="NETWORK=VALUE",
              help="A channel to list, e.g. linkedin=alex-example; repeatable.")
@click.option("--provider", type=click.Choice(sorted(PROVIDERS)),
              help="Your mail provider [default: guessed from the address, else asked].")
@click.option("--host", help="SMTP server (for generic and IONOS).")
@click.option("--port", type=click.IntRange(1, 65535), help="SMTP port.")
@click.option("--security", callback=_security_option, metavar="[starttls|tls|none]",
              help="TLS mode: starttls, tls (what mail programs call SSL) or none.")
@click.option("--username", help="SMTP login if it is not your address.")
@click.option("--auth", type=click.Choice(config.AUTH_MODES), help="password or oauth2.")
@click.option("--client-id", help="Your OAuth client's id (with --auth oauth2).")
@click.option("--tenant", help="Microsoft tenant (organizations, consumers or your tenant id).")
@click.option("--force", is_flag=True, help="Update an existing profile.toml (keeping every key "
              "init does not ask for) and replace .env, without asking.")
@handle_errors
def init(folder: Path, force: bool, **options: Any) -> None:
    """Write profile.toml (or update yours) and .env (no secret in it), by asking or
    from the options."""
    from ..accounts.setup import read_profile_document

    given, interview = _Given(**options), _Interview(sys.stdin.isatty())
    profile_path, env_path = folder / "profile.toml", folder / ".env"
    document = read_profile_document(profile_path)  # a broken one stops before any question
    replace_env = _may_write(profile_path, env_path, interview, force)
    person = _ask_person(interview, given, document)
    account = _ask_account(interview, given, person.email) if replace_env else None
    _write_files(profile_path, env_path, person, document, account)
    _next_steps(interview, profile_path, env_path, account)


def _may_write(profile_path: Path, env_path: Path, interview: _Interview, force: bool) -> bool:
    """Before the first question: may an existing profile.toml be updated, and
    may .env be written (False: the user keeps theirs, so no server questions)?"""
    # lexists: a dangling link is in the way too (exists() says no, the write would refuse)
    existing = [str(p) for p in (profile_path, env_path) if os.path.lexists(p)]
    if not existing or force:
        return True
    if not interview.interactive:
        verb, them = ("exist", "them") if len(existing) > 1 else ("exists", "it")
        raise ConfigError(f"{' and '.join(existing)} {verb}: pass --force to update {them} "
                          f"(nothing was written).")
    if profile_path.exists():
        click.echo(f"{profile_path} exists: your answers update it (its values are the "
                   f"defaults); organisation, title, phones, address, photo and the channels "
                   f"you do not name again stay as they are.")
    if not os.path.lexists(env_path):
        return True
    if click.confirm(f"{env_path} exists. Replace it?", default=False):
        return True
    click.echo(f"Kept {env_path}: no questions about the server.")
    return False


def _ask_person(interview: _Interview, given: _Given, document: Any) -> Person:
    from ..accounts.setup import Person, existing_text

    def was(key: str) -> str | None:
        return existing_text(document, key) or None

    name = interview.ask(given.name, "Your name", option="--name", default=was("name"))
    email = interview.ask(given.email, "Your e-mail address", option="--email",
                          check=sender_address, default=was("email"))
    event = interview.ask(given.event, "Where did you meet people (e.g. FOSDEM 2026; empty: "
                          "nowhere)", option="--event", required=False, default=was("event"))
    german = email.rpartition(".")[2].lower() in ("de", "at", "ch", "li")
    lang = interview.ask(given.lang, "Mail language (en, de)", option="--lang",
                         check=_one_of(("en", "de")),
                         default=was("lang") or ("de" if german else "en"))
    return Person(name=name, email=email, event=event, lang=lang,
                  channels=_ask_channels(interview, given, document))


def _ask_channels(interview: _Interview, given: _Given,
                  document: Any) -> tuple[tuple[str, str], ...]:
    from ..accounts.setup import existing_networks

    if given.channels or not interview.interactive:
        return tuple(_channel(c, "--channel") for c in given.channels)
    click.echo(f"Your channels, one per line as NETWORK=VALUE (networks: "
               f"{', '.join(n for n in NETWORKS if n != 'other')}); empty line to finish.")
    if listed := existing_networks(document):
        click.echo(f"  The profile lists {', '.join(listed)}: they stay; a network named again "
                   f"gets the new value.")
    pairs = []
    while line := str(click.prompt("Channel", default="", show_default=False)).strip():
        try:
            pairs.append(_channel(line))
        except ConfigError as err:
            click.echo(f"  {err}")
    return tuple(pairs)


def _ask_account(interview: _Interview, given: _Given, email: str) -> Account:
    from ..accounts.setup import Account

    provider = _ask_provider(interview, given, email)
    preset = PROVIDERS[provider]
    asked = not preset.host  # a preset's server settings are known, not asked
    host = interview.ask(given.host, "SMTP server", option="--host", asked=asked,
                         default=preset.host or None)
    security = given.security or interview.ask(
        None, "Security (starttls, tls, none)", option="--security", check=security_mode,
        default=preset.security, asked=asked)
    default_port = config.DEFAULT_PORTS[security] if security != preset.security else preset.port
    port = given.port or int(interview.ask(None, "SMTP port", option="--port", check=_port,
                                           default=str(default_port), asked=asked))
    auth, client_id, tenant = _ask_login(interview, given, provider)
    username = email if given.username is None else given.username.strip()  # "": no login
    return Account(email=email, provider=provider, host=host, port=port, security=security,
                   auth=auth, username=username, client_id=client_id, tenant=tenant)


def _ask_provider(interview: _Interview, given: _Given, email: str) -> str:
    from ..accounts.setup import guess_provider

    if given.provider is not None:
        return given.provider
    guessed = guess_provider(email)
    if guessed is not None:
        click.echo(f"Provider: {PROVIDERS[guessed].label} (from the address).")
        return guessed
    return interview.ask(None, f"Your provider ({', '.join(PROVIDERS)})", option="--provider",
                         check=_one_of(tuple(PROVIDERS)),
                         default="generic")


def _ask_login(interview: _Interview, given: _Given, provider: str) -> tuple[str, str, str]:
    """(auth, OAuth client id, tenant)."""
    preset = PROVIDERS[provider]
    auth = given.auth or interview.ask(
        None, "Log in with a password or OAuth2 (password, oauth2)", option="--auth",
        check=_one_of(config.AUTH_MODES), default=preset.auth,
        asked=bool(preset.oauth_provider))
    if auth != "oauth2":
        return auth, "", ""
    if not preset.oauth_provider:
        raise ConfigError(f"mailer's OAuth2 sign-in is for Google and Microsoft; "
                          f"{preset.label} needs --auth password.")
    client_id = interview.ask(given.client_id, "Your OAuth client id (README: registering a "
                              "client)", option="--client-id")
    return auth, client_id, given.tenant or preset.tenant


def _write_files(profile_path: Path, env_path: Path, person: Person, document: Any,
                 account: Account | None) -> None:
    """Check the profile, then write both files (nothing when the profile is refused)."""
    from ..accounts.setup import env_text, profile_text, write_private
    from ..compose.profile import parse_profile

    text = profile_text(person, document)
    parse_profile(text, profile_path)  # refuse before anything is written
    env = env_text(account) if account is not None else None
    write_private(profile_path, text, replace=os.path.lexists(profile_path))
    written = [str(profile_path)]
    if env is not None:
        write_private(env_path, env, replace=os.path.lexists(env_path))
        written.append(str(env_path))
    click.echo(f"Wrote {' and '.join(written)} (readable by you only). Organisation, title, "
               f"phones, photo and address go into {profile_path} by hand "
               f"(profile.example.toml explains each).")


def _next_steps(interview: _Interview, profile_path: Path, env_path: Path,
                account: Account | None) -> None:
    """Offer the sign-in and the check; the provider's password hint goes with the
    sign-in it is for."""
    hint = ""
    if account is not None and account.auth == "password":
        hint = PROVIDERS[account.provider].hint
    if not interview.interactive:
        asks = f", which asks for {hint};" if hint else ","
        click.echo(f"Next: `mailer login`{asks} then `mailer check`.")
        return
    env, settings = _settings(env_path)
    if not click.confirm("Sign in now (mailer login)?", default=True):
        return
    if hint:
        click.echo(f"The password is {hint}.")
    login_account(settings, env, open_browser=True)
    if click.confirm("Check the account now (mailer check)?", default=True):
        from ..accounts.credentials import Credentials

        run_check(Credentials(env).smtp(), profile_path, send_test=False)
