"""The problems report: after a send (or `mailer inbox`), the failed, deferred,
unknown and bounced recipients with the server's replies (a bounce's diagnostic),
as a CSV in the state directory (beside the journal), not in the current folder:
cron runs a send anywhere, and the path is printed."""

from __future__ import annotations

from pathlib import Path

from ..csvsafe import write_csv
from ..errors import ConfigError
from ..journal import Journal
from ..models import State

PROBLEM_STATES = (State.FAILED, State.DEFERRED, State.UNKNOWN, State.BOUNCED)
COLUMNS = ("recipient", "state", "code", "reply", "attempts", "message_id")


def write_problems(journal: Journal, campaign: str, folder: Path | None = None) -> Path | None:
    """`problems-<campaign>.csv` in `folder` (default: the journal's, the state directory),
    or None when there is no problem."""
    rows = [{"recipient": r.recipient, "state": str(r.state), "code": r.last_code,
             "reply": r.last_reply, "attempts": r.attempts, "message_id": r.message_id}
            for r in journal.rows(campaign, PROBLEM_STATES)]
    if not rows:
        return None
    path = (folder or journal.path.parent) / f"problems-{safe_name(campaign)}.csv"
    try:
        write_csv(path, COLUMNS, rows)
    except OSError as err:
        raise ConfigError(f"Cannot write the problems report {path}: {err.strerror}") from None
    return path


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
