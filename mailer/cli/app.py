"""The click group, the one place where errors become messages and exit codes, and
what the commands share: options, the one console and the journal in the state directory."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from .. import DISTRIBUTION, __version__
from ..accounts.providers import PROVIDERS
from ..contacts.fields import FIELDS
from ..errors import ConfigError, MailerError
from ..sanitize import shown

if TYPE_CHECKING:
    from rich.console import Console

    from ..compose.message import Composer
    from ..contacts.csvfile import ColumnReport

F = TypeVar("F", bound=Callable[..., Any])  # a click command being decorated
P = ParamSpec("P")
R = TypeVar("R")


class UsageFailure(click.ClickException):
    """click's own errors (a bad option, a missing file) in mailer's one format:
    `mailer: error: ...` with where to look next, exit code 2."""

    exit_code = 2

    def __init__(self, err: click.ClickException, command: str) -> None:
        message = err.format_message().strip()
        if message and message[-1] not in ".!?":
            message += "."
        super().__init__(f"{message} See '{command} --help'.")

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"mailer: error: {self.message}", file=file, err=file is None)


class MailerCommand(click.Command):
    """A command whose option and argument errors read like every other error."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:  # `mailer` alone prints the help, as it should
            raise
        except click.ClickException as err:
            names = [parent.command_path] if parent is not None else []
            command = " ".join([*names, info_name or "mailer"])
            raise UsageFailure(err, command) from None


class MailerGroup(MailerCommand, click.Group):
    """The same for groups (the MRO puts click.Group's make_context under MailerCommand's);
    every command and sub-group defined on it is of these classes,
    and a click error raised while a command runs is rendered the same way too."""

    command_class = MailerCommand
    group_class = type  # sub-groups are MailerGroups

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UsageFailure, click.exceptions.NoArgsIsHelpError):
            raise
        except click.ClickException as err:
            failed = getattr(err, "ctx", None)
            raise UsageFailure(
                err, failed.command_path if isinstance(failed, click.Context) else ctx.command_path
            ) from None


@click.group(cls=MailerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="mailer", message=f"%(prog)s %(version)s ({DISTRIBUTION})"
)
def main() -> None:
    """Send one impersonal "here are my channels" mail, with your vCard, to everyone you met."""
    # Everything mailer writes (journal, cache, previews, reports) holds other people's
    # data: private to the user whatever umask the shell had.
    os.umask(0o077)


# The process is ending: the garbage collector's last passes over every object of the
# hundreds of modules a send loads (~30 ms, a tenth of a short send) would free nothing
# the system does not take back anyway.  Files and the journal are closed by then.
atexit.register(gc.freeze)

PIPE_WIDTH = 4096  # text to a pipe or file is never wrapped: a grep must find whole addresses


def console(*, stderr: bool = False) -> Console:
    """The one rich Console of every command: tables as wide as the terminal, else as
    long as their content (no address folded mid-word); a printed line is never wrapped
    (a long reason stays one greppable line); no markup highlighting."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(file=stream, highlight=False, width=width, soft_wrap=True)


def note_columns(report: ColumnReport) -> None:
    """On stderr: how a CSV file's columns were read, when a column mailer does not
    know was ignored or none names the contact (preview and send).  An export's
    address, birthday or notes columns are no news on every run; `contacts`, the
    command for looking at an import, shows them all."""
    if report.unknown or report.nameless:
        click.echo(f"mailer: note: {report.text(unknown_only=True)}", err=True)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a MailerError into `mailer: error: ...` on stderr and its exit code.
    Ctrl-C outside the sender (which handles it itself), also at a question, exits
    quietly with 130 (click's own "Aborted!" with exit 1 would hide it was an interrupt)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MailerError as err:  # the text may quote file names and file contents
            click.echo(f"mailer: error: {shown(str(err))}", err=True)
            sys.exit(err.exit_code)
        except (KeyboardInterrupt, click.exceptions.Abort):  # Abort: Ctrl-C/D at a prompt
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
    """--profile; where it is `required`, ./profile.toml stands in for it (`profile_here`)."""
    return click.option(
        "--profile",
        "profile_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help + (" [default: ./profile.toml]" if required else ""),
    )


def profile_if_here(given: Path | None) -> Path | None:
    """--profile, else ./profile.toml (what `mailer init` writes) when there is one."""
    if given is not None:
        return given
    here = Path("profile.toml")
    return here if here.is_file() else None


def profile_here(given: Path | None) -> Path:
    """profile_if_here, or an error naming both ways when neither is there."""
    if (found := profile_if_here(given)) is not None:
        return found
    raise ConfigError("No profile: there is no profile.toml here. Pass --profile FILE, or "
                      "write one here with `mailer init`.")


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


def message_options(func: F) -> F:
    """--templates and --lang, for every command that renders mail."""
    func = click.option("--lang", help="Write every mail in this language (e.g. de, en).")(func)
    return click.option(
        "--templates",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Your own templates: one folder per language with subject.txt.j2, body.txt.j2, "
        "body.html.j2.",
    )(func)


def _env_provider() -> str | None:
    """The provider `mailer init` wrote into .env, if any; a wrong one is named as the
    variable, not as a --provider the user never typed."""
    from .. import config

    try:  # runs while click parses: a ConfigError here must still be one line
        provider = config.environment().get("MAILER_PROVIDER", "").strip().lower()
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    if provider and provider not in PROVIDERS:
        raise click.UsageError(
            f"MAILER_PROVIDER={provider!r} is not one of {', '.join(sorted(PROVIDERS))}; "
            "set it in .env or the environment, or pass --provider."
        )
    return provider or None


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
        type=click.Choice(sorted(PROVIDERS)),
        default=_env_provider,
        show_default=False,
        help="Use this provider's published limits [default: MAILER_PROVIDER, else generic, "
        "20/min and 1000/day].",
    )(func)
    return click.option(
        "--rate",
        "rates",
        multiple=True,
        metavar="N/UNIT",
        help="Sending limit, e.g. 30/min or 2000/day; repeat or comma-join for several; "
        "'none' for no limit. Overrides --provider.",
    )(func)


def sent_copy_option(func: F) -> F:
    return click.option(
        "--no-sent-copy", "no_sent_copy", is_flag=True,
        help="Do not file a copy of each sent mail in your IMAP Sent folder.")(func)


def yes_option(func: F) -> F:
    return click.option(
        "--yes",
        "-y",
        "assume_yes",
        is_flag=True,
        help="Do not ask; needed when there is no terminal.",
    )(func)


def composer_for(profile_path: Path | None, templates: Path | None,
                 lang: str | None) -> tuple[str, Composer]:
    """The profile's phone region and the Composer for its mails (--profile, else
    ./profile.toml; --templates, --lang)."""
    from ..compose.message import Composer
    from ..compose.profile import load_profile

    profile = load_profile(profile_here(profile_path))
    return profile.region, Composer(profile, templates=templates, lang=lang)
