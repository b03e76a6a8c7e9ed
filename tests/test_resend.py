"""`mailer resend`: chosen states only, never `sent`; corrected contacts files;
contacts added to the file later.  Real aiosmtpd, real journal, real CSV."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mailer.journal import Journal
from mailer.models import State
from tests.conftest import PEOPLE, write_contacts
from tests.smtpd import Fault, SmtpServer, make_draft
from tests.test_run_due import mailer, send

# one row in each state a resend has to tell apart
STATES = {
    "sent@example.com": State.SENT,
    "failed@example.com": State.FAILED,
    "deferred@example.com": State.DEFERRED,
    "unknown@example.com": State.UNKNOWN,
}


def journal_with_every_state(state_dir: Path) -> None:
    with Journal(state_dir / "journal.sqlite3") as journal:
        journal.enqueue("event", [make_draft(address) for address in STATES])
        for address, state in STATES.items():
            row = journal.claim("event")
            assert row is not None and row.recipient == address
            journal.mark(row.id, state, None, f"was {state}")


def states() -> dict[str, str]:
    result = mailer("status", "--campaign", "event", "--json")
    assert result.exit_code == 0, result.output
    return {r["recipient"]: r["state"] for r in json.loads(result.output)["recipients"]}


def resend(*args: str, code: int = 1) -> list[str]:
    """Exit code 1 while anything in the campaign is failed, deferred or unknown."""
    result = mailer("resend", "--campaign", "event", "--rate", "none", "--yes", *args)
    assert result.exit_code == code, result.output
    return result.output.splitlines()


def test_each_flag_resends_its_state_only_and_sent_never(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    journal_with_every_state(isolated_env)
    resend()  # no flag: the deferred ones
    assert server.recipients() == ["deferred@example.com"]
    resend("--failed")
    assert server.recipients()[1:] == ["failed@example.com"]
    out = resend("--only", "sent@example.com", "--only", "unknown@example.com", code=0)
    assert "  skipped   sent@example.com: is sent, not resent" in out
    assert server.recipients()[2:] == ["unknown@example.com"]
    assert resend("--failed", "--unknown", "--deferred", code=0)[-1] == "Nothing to resend."
    assert sorted(server.recipients()) == sorted(a for a in STATES if a != "sent@example.com")
    assert set(states().values()) == {"sent"}


def test_only_narrows_a_state_flag(work: Path, server: SmtpServer, isolated_env: Path) -> None:
    journal_with_every_state(isolated_env)
    out = resend("--unknown", "--only", "failed@example.com", code=0)
    assert "  skipped   failed@example.com: is failed, not resent" in out
    assert out[-1] == "Nothing to resend." and server.received == []


def test_without_a_terminal_it_asks_for_yes_and_changes_nothing(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    journal_with_every_state(isolated_env)
    result = mailer("resend", "--campaign", "event", "--deferred")
    assert result.exit_code == 2 and "--yes" in result.output
    assert "again     deferred@example.com" in result.output  # shown before refusing
    assert states()["deferred@example.com"] == "deferred" and server.received == []
    unknown = mailer("resend", "--campaign", "nope")
    assert unknown.exit_code == 2 and "known: event" in unknown.output


def test_a_corrected_address_is_mailed_once_and_new_contacts_join(
    work: Path, server: SmtpServer
) -> None:
    server.fault("ben@example.org", Fault(reply="550 5.1.1 No such user"))
    assert send("--yes").exit_code == 1
    # Ben's address fixed in place (same line), and a contact from the next event added
    write_contacts(work, [("Anna", "anna@example.com"), ("Ben", "ben@example.net"),
                          ("Chloe", "chloe@example.net"), ("Dora", "dora@example.com")])
    result = mailer("resend", "contacts.csv", "--profile", "profile.toml", "--rate", "none",
                    "--yes")
    assert result.exit_code == 0, result.output
    assert "corrected ben@example.org -> ben@example.net (contacts.csv:3)" in result.output
    assert "new       dora@example.com (contacts.csv:5)" in result.output
    assert sorted(server.recipients()) == sorted(
        [*PEOPLE[::2], "ben@example.net", "dora@example.com"])
    rows = {r["recipient"]: (r["state"], r["source"]) for r in json.loads(
        mailer("status", "--json").output)["recipients"]}
    assert rows["ben@example.net"] == ("sent", "contacts.csv:3")  # the row, updated in place
    assert "ben@example.org" not in rows
    again = mailer("resend", "contacts.csv", "--profile", "profile.toml", "--yes")
    assert again.exit_code == 0 and again.output.endswith("Nothing to resend.\n")
    assert send("--yes").exit_code == 0  # a rerun of send finds nobody new either
    assert len(server.received) == 4


def test_a_corrected_contact_on_another_line_is_found_by_name(
    work: Path, server: SmtpServer
) -> None:
    server.fault("ben@example.org", Fault(reply="550 5.1.1 No such user"))
    assert send("--yes").exit_code == 1
    write_contacts(work, [("Dora", "dora@example.com"), ("Anna", "anna@example.com"),
                          ("Ben", "ben@example.net"), ("Chloe", "chloe@example.net")])
    result = mailer("resend", "contacts.csv", "--profile", "profile.toml", "--failed",
                    "--rate", "none", "--yes")
    assert result.exit_code == 0, result.output
    assert "corrected ben@example.org -> ben@example.net (contacts.csv:4)" in result.output
    assert server.recipients().count("ben@example.net") == 1
    assert sorted(server.recipients()) == sorted(
        [*PEOPLE[::2], "ben@example.net", "dora@example.com"])


def test_a_rerun_of_send_picks_up_contacts_added_later_and_mails_nobody_twice(
    work: Path, server: SmtpServer
) -> None:
    assert send("--yes").exit_code == 0
    with (work / "contacts.csv").open("a", encoding="utf-8") as f:
        f.write("Dora,dora@example.com\n")
    rerun = send("--yes")
    assert rerun.exit_code == 0, rerun.output
    assert "read 4 = new 1 + already mailed 3" in rerun.output
    assert sorted(server.recipients()) == sorted([*PEOPLE, "dora@example.com"])


def test_resend_from_files_needs_a_profile(work: Path, server: SmtpServer) -> None:
    assert send("--yes").exit_code == 0
    result = mailer("resend", "contacts.csv", "--yes")
    assert result.exit_code == 2 and "--profile" in result.output


def test_a_row_whose_contact_is_still_in_the_file_is_never_corrected_into_another(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    """Anna's delivery is unknown; Dora now sits on Anna's old line.  Anna is
    resent as she is and Dora joins: nobody's row is handed to somebody else."""
    with Journal(isolated_env / "journal.sqlite3") as journal:
        journal.enqueue("event", [replace(make_draft("anna@example.com"), source="contacts.csv:2")])
        row = journal.claim("event")
        assert row is not None
        journal.mark(row.id, State.UNKNOWN, None, "the sending process stopped")
    write_contacts(work, [("Dora", "dora@example.com"), ("Anna", "anna@example.com")])
    out = resend("contacts.csv", "--profile", "profile.toml", "--unknown", code=0)
    assert "  again     anna@example.com (was unknown: the sending process stopped)" in out
    assert "  new       dora@example.com (contacts.csv:2)" in out
    assert not any(line.startswith("  corrected") for line in out)
    assert "2 to resend = again 1 + corrected 0 + new 1" in out
    assert sorted(server.recipients()) == ["anna@example.com", "dora@example.com"]


def test_resend_counts_people_as_the_journal_does(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    journal_with_every_state(isolated_env)
    out = resend("--failed", "--deferred")
    assert "2 to resend = again 2 + corrected 0 + new 0" in out
    assert "This run: 2 sent, 0 deferred, 0 failed" in "\n".join(out)
    with Journal(isolated_env / "journal.sqlite3") as journal:
        counts = journal.counts("event")
    assert counts[State.SENT] == 3 and counts[State.UNKNOWN] == 1  # the two, plus the one before
