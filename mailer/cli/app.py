"""The click group and the one place where errors become messages and exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from .. import __version__
from ..contacts.fields import FIELDS
from ..errors import ConfigError, MailerError
from ..ratelimit import PRESETS
from ..sanitize import shown

if TYPE_CHECKING:
    from ..journal import Journal
    from ..message import Composer

F = TypeVar("F", bound=Callable[..., Any])  # a click command being decorated
P = ParamSpec("P")
R = TypeVar("R")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailer")
def main() -> None:
    """Send one impersonal "here are my channels" mail, with your vCard, to everyone you met."""
    # Everything mailer writes (journal, cache, previews, reports) holds other people's
    # data: private to the user whatever umask the shell had.
    os.umask(0o077)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a MailerError into `mailer: error: ...` on stderr and its exit code.
    Ctrl-C outside the sender (which handles it itself) exits quietly with 130."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MailerError as err:  # the text may quote file names and file contents
            click.echo(f"mailer: error: {shown(str(err))}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("\nmailer: interrupted", err=True)
            sys.exit(130)
        except MemoryError:  # the readers and preview stream; this is a last line, not a plan
            click.echo("mailer: error: out of memory; nothing more was written. Split the "
                       "input into smaller files and run again.", err=True)  # fmt: skip
            sys.exit(2)

    return wrapper


def paths_argument(func: F) -> F:
    """PATH... : contacts files, card images or folders of them."""
    return click.argument(
        "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
    )(func)


def profile_option(
    *, required: bool = True, help: str = "Your profile.toml (see profile.example.toml)."
) -> Callable[[F], F]:
    return click.option(
        "--profile",
        "profile_path",
        required=required,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help,
    )


def map_option(func: F) -> F:
    """--map COLUMN=FIELD, repeatable; read with `parse_mappings`."""
    return click.option(
        "--map",
        "mappings",
        multiple=True,
        metavar="COLUMN=FIELD",
        help=f"Use CSV column COLUMN as FIELD ({', '.join(FIELDS)}); repeatable.",
    )(func)


def parse_mappings(pairs: tuple[str, ...]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        column, sep, field = pair.rpartition("=")  # a field name never holds "="
        if not sep or not column.strip() or not field.strip():
            raise ConfigError(f"--map {pair!r}: write it as COLUMN=FIELD, e.g. --map 'Mail=email'.")
        mapping[column.strip()] = field.strip()
    return mapping or None


def open_journal(*, create: bool = True) -> Journal | None:
    """The journal in the state directory; with create=False, None where none exists yet
    (so that a preview or a status query never creates one)."""
    from .. import config
    from ..journal import Journal, journal_path

    path = journal_path(config.state_dir(config.environment()))
    return Journal(path) if create or path.exists() else None


def writable_journal() -> Journal:
    """The journal in the state directory, created when missing."""
    from .. import config
    from ..journal import Journal, journal_path

    return Journal(journal_path(config.state_dir(config.environment())))


def message_options(func: F) -> F:
    """--templates and --lang, for every command that renders mail."""
    func = click.option("--lang", help="Write every mail in this language (e.g. de, en).")(func)
    return click.option(
        "--templates",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Your own templates: one folder per language with subject.txt.j2, body.txt.j2, "
        "body.html.j2.",
    )(func)


def sending_options(func: F) -> F:
    """--rate, --provider and --concurrency, for every command that sends."""
    func = click.option(
        "--concurrency",
        default=1,
        show_default=True,
        type=click.IntRange(1, 32),
        help="SMTP connections in parallel, each logged in once.",
    )(func)
    func = click.option(
        "--provider",
        type=click.Choice(sorted(PRESETS)),
        help="Use this provider's published limits [default: generic, 20/min and 1000/day].",
    )(func)
    return click.option(
        "--rate",
        "rates",
        multiple=True,
        metavar="N/UNIT",
        help="Sending limit, e.g. 30/min or 2000/day; repeat or comma-join for several; "
        "'none' for no limit. Overrides --provider.",
    )(func)


def yes_option(func: F) -> F:
    return click.option(
        "--yes",
        "-y",
        "assume_yes",
        is_flag=True,
        help="Do not ask; needed when there is no terminal.",
    )(func)


def composer_for(profile_path: Path, templates: Path | None,
                 lang: str | None) -> tuple[str, Composer]:
    """The profile's phone region and the Composer for its mails (--templates, --lang)."""
    from ..message import Composer
    from ..profile import load_profile

    profile = load_profile(profile_path)
    return profile.region, Composer(profile, templates=templates, lang=lang)
