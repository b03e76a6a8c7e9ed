"""One plan: what the dry run shows is what goes out, in the same words and numbers.

A property test over generated contact sets (duplicates with and without
names, rejected rows, suppressed people, people mailed in an earlier
campaign): `preview`, then `send` on a real terminal answering "y", then a
rerun.  For every entry the preview's `.eml` and the message the real
aiosmtpd server received are byte-identical apart from Date and Message-ID;
the summary lines of preview, send's confirmation and the rerun agree with an
independent model of the input, and the rerun counts people as the journal does.
"""

from __future__ import annotations

import csv
import email
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.campaign.plan import PlanItem, Status, Tally
from mailer.cli import main
from mailer.journal import Journal
from mailer.models import State
from tests.smtpd import SmtpServer, make_draft

PROJECT = Path(__file__).resolve().parents[1]
POOL = ["ada@example.com", "ben@example.org", "chloe@example.net", "dora@example.com"]
NAMES = ["", "", "Ada Lovelace", "Jürgen Müller", "Kim Lee"]
BAD = ["not-an-address", "someone@", "two@@example.com"]
CLI = "from mailer.cli import main; main()"


@dataclass(frozen=True)
class Row:
    name: str
    email: str
    person: int | None  # index into POOL; None for a row that is rejected


@dataclass(frozen=True)
class Case:
    rows: tuple[Row, ...]
    suppressed: frozenset[int]
    mailed_before: frozenset[int]


def spelled(address: str, upper: bool) -> str:
    """The same address as an exporter may write it: local part in capitals."""
    local, _, domain = address.partition("@")
    return f"{local.upper() if upper else local}@{domain}"


rows = st.one_of(
    st.builds(lambda i, name, upper: Row(name, spelled(POOL[i], upper), i),
              st.integers(0, len(POOL) - 1), st.sampled_from(NAMES), st.booleans()),
    st.builds(lambda name, bad: Row(name, bad, None), st.sampled_from(NAMES), st.sampled_from(BAD)),
)
cases = st.builds(Case, st.lists(rows, min_size=1, max_size=8).map(tuple),
                  st.frozensets(st.integers(0, len(POOL) - 1), max_size=2),
                  st.frozensets(st.integers(0, len(POOL) - 1), max_size=2))


def expected_statuses(case: Case, mailed: frozenset[int]) -> list[str]:
    """The model: a person's first row decides, later rows of the same person are
    duplicates; the do-not-mail list wins over "already mailed"."""
    seen: set[int] = set()
    out = []
    for row in case.rows:
        if row.person is None:
            out.append("rejected")
        elif row.person in seen:
            out.append("duplicate")
        else:
            seen.add(row.person)
            out.append("suppressed" if row.person in case.suppressed else
                       "already mailed" if row.person in mailed else "new")
    return out


def expected_names(case: Case) -> dict[int, str]:
    """The richest record wins: here, the first row of a person that has a name."""
    names: dict[int, str] = {}
    for row in case.rows:
        if row.person is not None and not names.get(row.person):
            names[row.person] = row.name
    return names


def counts_in(output: str) -> Counter[str]:
    """The numbers of the one summary line `read N = new A + duplicate B + ...`."""
    line = next(x for x in output.splitlines() if x.startswith("read "))
    total, _, parts = line.partition(" = ")
    counts = Counter({word: int(n) for word, n in
                      (part.rsplit(" ", 1) for part in parts.split(" + "))})
    assert int(total.removeprefix("read ")) == sum(counts.values()), line
    return +counts


@pytest.fixture(scope="module")
def plain_server() -> Iterator[SmtpServer]:
    with SmtpServer() as srv:
        yield srv


def prepare(work: Path, case: Case) -> dict[str, str]:
    with (work / "contacts.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Name", "Email"])
        writer.writerows((row.name, row.email) for row in case.rows)
    shutil.copy(PROJECT / "profile.example.toml", work / "profile.toml")
    home = work / "home"
    with Journal(home / "journal.sqlite3") as journal:
        for i in sorted(case.mailed_before):
            journal.enqueue("earlier", [make_draft(POOL[i])])
            claimed = journal.claim("earlier")
            assert claimed is not None
            journal.mark(claimed.id, State.SENT, 250, "OK")
        for i in sorted(case.suppressed):
            journal.suppress_add(POOL[i], "asked")
    return {"MAILER_HOME": str(home), "MAILER_ENV_FILE": ""}


def send_on_a_terminal(work: Path, env: dict[str, str]) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "send", "contacts.csv", "--profile", "profile.toml",
         "--rate", "none"], cwd=work, env={**os.environ, **env, "PYTHONPATH": str(PROJECT)},
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(follower)
    os.write(leader, b"y\n")
    out = proc.communicate(timeout=120)[0].decode()
    os.close(leader)
    assert proc.returncode == 0, out
    return out


def without_date_and_id(message: bytes) -> bytes:
    head, sep, body = message.partition(b"\r\n\r\n")
    kept = [line for line in head.split(b"\r\n")
            if not line.lower().startswith((b"date:", b"message-id:"))]
    return b"\r\n".join(kept) + sep + body


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases)
def test_preview_is_what_send_sends_in_the_same_words(plain_server: SmtpServer, case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**prepare(work, case), **plain_server.env()}
        statuses = expected_statuses(case, case.mailed_before)
        model = +Counter(statuses)

        preview = CliRunner().invoke(main, ["preview", str(work / "contacts.csv"), "--profile",
                                            str(work / "profile.toml"), "--out",
                                            str(work / "preview")], env={**env, "COLUMNS": "300"})
        assert preview.exit_code == 0, preview.output
        assert counts_in(preview.output) == model
        shown = [m.group(1) for m in re.finditer(r'class="status s-[\w-]+">([^<]+)</span>\n</h2>',
                                                  (work / "preview" / "index.html").read_text())]
        assert shown == statuses  # one status per entry, in the order read

        before = len(plain_server.received)
        out = send_on_a_terminal(work, env)
        confirmation, _, summary = out.partition("SMTP server")
        new = model["new"]
        assert counts_in(confirmation) == model  # the same line, before the question
        assert f"Campaign 'contacts': {new} message(s) to send now." in confirmation
        assert f"This run: {new} sent, 0 deferred, 0 failed" in (summary or out)

        received = {m.rcpt_tos[0]: m.data for m in plain_server.received[before:]}
        emls = {path.name.split("-", 1)[1].removesuffix(".eml"): path.read_bytes()
                for path in (work / "preview").glob("*.eml")}
        names = expected_names(case)
        assert len(received) == new
        for row, status in zip(case.rows, statuses, strict=True):
            if status != "new":
                continue
            sent = received.pop(row.email)
            assert without_date_and_id(sent) == without_date_and_id(emls[row.email])
            to = email.message_from_bytes(sent, policy=default_policy)["To"].addresses[0]
            assert to.display_name == names[row.person or 0]
        assert received == {}

        rerun = CliRunner().invoke(main, ["send", str(work / "contacts.csv"), "--profile",
                                          str(work / "profile.toml"), "--rate", "none", "--yes"],
                                   env=env)
        assert rerun.exit_code == 0, rerun.output
        newly_mailed = {row.person for row, s in zip(case.rows, statuses, strict=True)
                        if s == "new"}
        again = +Counter(expected_statuses(case, case.mailed_before | newly_mailed))
        assert counts_in(rerun.output) == again
        with Journal(work / "home" / "journal.sqlite3") as journal:
            in_journal = journal.counts("contacts")[State.SENT] + sum(
                1 for i in case.mailed_before - case.suppressed
                if any(r.person == i for r in case.rows))
        assert again["already mailed"] == in_journal  # people, not rows
        assert "Nothing to send." in rerun.output


def test_the_tally_counts_everything_but_keeps_a_bounded_list_of_notes() -> None:
    tally = Tally()
    rejected = [PlanItem(Status.REJECTED, f"c.csv:{i}", "", reason="no e-mail address")
                for i in range(Tally.NOTE_LIMIT + 5)]
    items = [*rejected, PlanItem(Status.NEW, "c.csv:0", "a@example.com")]
    assert list(tally.count(items)) == items
    assert len(tally.notes) == Tally.NOTE_LIMIT and tally.more_notes == 5
    assert tally.line() == f"read {len(items)} = new 1 + rejected {len(rejected)}"
