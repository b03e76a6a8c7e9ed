"""The click group and the one place where errors become messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import __version__
from ..errors import MailerError

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailer")
def main() -> None:
    """Send one impersonal "here are my channels" mail, with your vCard, to everyone you met."""


def handle_errors(func: F) -> F:
    """Turn a MailerError into `mailer: error: ...` on stderr and its exit code.
    Ctrl-C outside the sender (which handles it itself) exits quietly with 130."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MailerError as err:
            click.echo(f"mailer: error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("\nmailer: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def paths_argument(func: F) -> F:
    """PATH... : contacts files, card images or folders of them."""
    return click.argument(
        "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
    )(func)
