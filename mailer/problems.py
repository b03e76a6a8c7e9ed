"""The problems report: after a send, the failed, deferred and unknown
recipients with the server's replies, as a CSV in the current folder."""

from __future__ import annotations

from pathlib import Path

from .csvsafe import write_csv
from .errors import ConfigError
from .journal import Journal
from .models import State

PROBLEM_STATES = (State.FAILED, State.DEFERRED, State.UNKNOWN)
COLUMNS = ("recipient", "state", "code", "reply", "attempts", "message_id")


def write_problems(journal: Journal, campaign: str, folder: Path) -> Path | None:
    """`folder/mailer-problems-<campaign>.csv`, or None when there is no problem."""
    rows = [{"recipient": r.recipient, "state": str(r.state), "code": r.last_code,
             "reply": r.last_reply, "attempts": r.attempts, "message_id": r.message_id}
            for r in journal.rows(campaign, PROBLEM_STATES)]
    if not rows:
        return None
    path = folder / f"mailer-problems-{safe_name(campaign)}.csv"
    try:
        write_csv(path, COLUMNS, rows)
    except OSError as err:
        raise ConfigError(f"Cannot write the problems report {path}: {err.strerror}") from None
    return path


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
