"""Commands: `init`, `login`, `logout`, `check`: from nothing to a verified account.

Thin over accounts/setup.py (presets and files), accounts/credentials.py (keyring),
accounts/oauth.py (sign-in flows) and accounts/check.py (the server check).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import config
from ..accounts.providers import PROVIDERS
from ..compose.profile import NETWORKS
from ..config import SmtpSettings
from ..errors import ConfigError
from ..models import Contact
from .app import handle_errors, main


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
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Your profile.toml, to check the largest message against SIZE "
                   "[default: ./profile.toml if there is one].")
@click.option("--send-test", is_flag=True, help="Also send one message to your own address.")
@handle_errors
def check(profile_path: Path | None, send_test: bool) -> None:
    """Connect, log in and show what the SMTP server offers, sending nothing."""
    from ..accounts.credentials import Credentials

    settings = Credentials(config.environment()).smtp()  # without a login: checks the rest
    if profile_path is None and Path("profile.toml").is_file():
        profile_path = Path("profile.toml")
    if profile_path is not None and not profile_path.is_file():
        raise ConfigError(f"The profile {profile_path} does not exist.")
    if not run_check(settings, profile_path, send_test):
        sys.exit(1)
    click.echo("All good.")


# -- init --------------------------------------------------------------------------


def _ask(value: str | None, prompt: str, *, interactive: bool, default: str | None = None,
         required: bool = True, option: str = "") -> str:
    if value is not None:
        return value.strip()
    if not interactive:
        if default is not None or not required:
            return default or ""
        raise ConfigError(f"{option} is needed when there is no terminal to ask on: pass it, "
                          f"or run `mailer init` in a terminal to be asked (`mailer init "
                          f"--help` lists the options).")
    answer = click.prompt(prompt, default=default if default is not None else
                          ("" if not required else None), show_default=bool(default))
    return str(answer).strip()


def _address(value: str, option: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise ConfigError(f"{option} {value!r}: {err}") from None


def _channel(text: str) -> tuple[str, str]:
    network, sep, value = text.partition("=")
    network = network.strip().lower()
    if not sep or not value.strip():
        raise ConfigError(f"--channel {text!r}: write it as NETWORK=VALUE, e.g. "
                          f"linkedin=alex-example.")
    if network not in NETWORKS or network == "other":
        raise ConfigError(f"--channel {text!r}: {network!r} is not one of "
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
@click.option("--security", type=click.Choice(config.SECURITY_MODES), help="TLS mode.")
@click.option("--username", help="SMTP login if it is not your address.")
@click.option("--auth", type=click.Choice(config.AUTH_MODES), help="password or oauth2.")
@click.option("--client-id", help="Your OAuth client's id (with --auth oauth2).")
@click.option("--tenant", help="Microsoft tenant (organizations, consumers or your tenant id).")
@click.option("--force", is_flag=True, help="Replace existing files without asking.")
@handle_errors
def init(folder: Path, name: str | None, email: str | None, event: str | None,
         lang: str | None, channels: tuple[str, ...], provider: str | None, host: str | None,
         port: int | None, security: str | None, username: str | None, auth: str | None,
         client_id: str | None, tenant: str | None, force: bool) -> None:
    """Write profile.toml and .env (no secret in it) by asking, or from the options."""
    from ..accounts.setup import Account, env_text, guess_provider, profile_text, write_private
    from ..compose.profile import parse_profile
    interactive = sys.stdin.isatty()
    name = _ask(name, "Your name", interactive=interactive, option="--name")
    email = _address(_ask(email, "Your e-mail address", interactive=interactive,
                          option="--email"), "--email")
    event = _ask(event, "Where did you meet people (e.g. FOSDEM 2026; empty: nowhere)",
                 interactive=interactive, required=False)
    german = email.rpartition(".")[2].lower() in ("de", "at", "ch", "li")
    lang = _ask(lang, "Mail language (en, de)", interactive=interactive,
                default="de" if german else "en")
    if lang not in ("en", "de"):
        raise ConfigError(f"The language {lang!r} is not one of en, de.")
    pairs = [_channel(c) for c in channels]
    if not channels and interactive:
        click.echo(f"Your channels, one per line as NETWORK=VALUE (networks: "
                   f"{', '.join(n for n in NETWORKS if n != 'other')}); empty line to finish.")
        while line := str(click.prompt("Channel", default="", show_default=False)).strip():
            try:
                pairs.append(_channel(line))
            except ConfigError as err:
                click.echo(f"  {err}")
    guessed = guess_provider(email)
    if provider is None:
        if guessed is not None:
            provider = guessed
            click.echo(f"Provider: {PROVIDERS[guessed].label} (from the address).")
        else:
            provider = _ask(None, f"Your provider ({', '.join(PROVIDERS)})",
                            interactive=interactive, default="generic")
            if provider not in PROVIDERS:
                raise ConfigError(f"The provider {provider!r} is not one of "
                                  f"{', '.join(PROVIDERS)}.")
    preset = PROVIDERS[provider]
    host = _ask(host, "SMTP server", interactive=interactive and not preset.host,
                default=preset.host or None, option="--host")
    security = security or (_ask(None, "Security (starttls, tls, none)",
                                 interactive=interactive, default=preset.security)
                            if not preset.host else preset.security)
    if security not in config.SECURITY_MODES:
        raise ConfigError(f"The security {security!r} is not one of "
                          f"{', '.join(config.SECURITY_MODES)}.")
    default_port = config.DEFAULT_PORTS[security] if security != preset.security else preset.port
    if port is None:
        port = (int(_ask(None, "SMTP port", interactive=interactive, default=str(default_port)))
                if not preset.host else default_port)
    username = _ask(username, "SMTP login", interactive=False, default=email)
    if auth is None:
        auth = preset.auth
        if preset.oauth_provider and interactive:
            auth = _ask(None, "Log in with a password or OAuth2 (password, oauth2)",
                        interactive=True, default=preset.auth)
    if auth not in config.AUTH_MODES:
        raise ConfigError(f"The login {auth!r} is not one of {', '.join(config.AUTH_MODES)}.")
    if auth == "oauth2":
        if not preset.oauth_provider:
            raise ConfigError(f"mailer's OAuth2 sign-in is for Google and Microsoft; "
                              f"{preset.label} needs --auth password.")
        client_id = _ask(client_id, "Your OAuth client id (README: registering a client)",
                         interactive=interactive, option="--client-id")
        tenant = tenant or preset.tenant
    elif preset.hint:
        click.echo(f"Password: {preset.hint}.")
    account = Account(name=name, email=email, provider=provider, host=host, port=port,
                      security=security, auth=auth, username=username, event=event,
                      lang=lang, channels=tuple(pairs), client_id=client_id or "",
                      tenant=tenant or "")
    profile_path, env_path = folder / "profile.toml", folder / ".env"
    text = profile_text(account)
    parse_profile(text, profile_path)  # refuse before anything is written
    written = []
    for path, content in ((profile_path, text), (env_path, env_text(account))):
        replace = force
        if path.exists() and not force:
            if not interactive:
                raise ConfigError(f"{path} exists: pass --force to replace it (nothing was "
                                  f"written).")
            replace = click.confirm(f"{path} exists. Replace it?", default=False)
            if not replace:
                click.echo(f"Kept {path}.")
                continue
        write_private(path, content, replace=replace)
        written.append(str(path))
    if written:
        click.echo(f"Wrote {' and '.join(written)} (readable by you only).")
    if not interactive:
        click.echo("Next: `mailer login`, then `mailer check`.")
        return
    env, settings = _settings(env_path)
    if click.confirm("Sign in now (mailer login)?", default=True):
        login_account(settings, env, open_browser=True)
        if click.confirm("Check the account now (mailer check)?", default=True):
            from ..accounts.credentials import Credentials

            run_check(Credentials(env).smtp(), profile_path, send_test=False)
