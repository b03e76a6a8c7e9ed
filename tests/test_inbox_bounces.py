"""Bounces from many mail servers, and who a message may change.

Fixtures are written from the RFCs (3464, 3462/6522, 3834, 8098) and the
public descriptions of each server's format, with example.com/.org/.net
addresses.  tests/fixtures/inbox/formats/ is what the code was developed on;
tests/fixtures/inbox/heldout/ was written afterwards and is only measured:
its figures are the issue's (>= 95 % of bounces with the right recipient,
no false positive, delays, auto-replies and other mail left alone, every
reply `replied`, no crash).  Every verdict is judged against a real SQLite
journal in which the campaign mailed each address with its own Message-ID.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pytest

from mailer.journal import Journal
from mailer.mailbox.inbox import ADDRESS_MATCH, Kind, Verdict, classify, judge, sort_one
from mailer.models import State
from tests.smtpd import make_draft

FIXTURES = Path(__file__).parent / "fixtures" / "inbox"
USER = "alex@example.com"
OWN = frozenset({USER})


def expected(folder: str) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(
        (FIXTURES / folder / "expected.json").read_text(encoding="utf-8"))
    return data


def load(path: Path, message_id: str) -> bytes:
    text = Template(path.read_text(encoding="utf-8")).safe_substitute(msgid=message_id)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


@dataclass
class Sent:
    journal: Journal
    ids: dict[str, str]  # Message-ID by recipient

    def verdict(self, raw: bytes) -> Verdict:
        return sort_one(raw, self.journal, OWN)

    def state(self, recipient: str) -> State:
        row = self.journal.by_address(recipient)
        assert row is not None
        return row.state


SENT_AT = 1796025600.0  # 2026-11-30 08:00 UTC, the fixtures' send


def mailed(journal: Journal, recipients: list[str], campaign: str = "fosdem") -> Sent:
    """The campaign mailed these people on the fixtures' day (bounces are dated after it)."""
    drafts = [make_draft(r, sender=USER) for r in recipients]
    journal.enqueue(campaign, drafts)
    for _ in drafts:
        row = journal.claim(campaign)
        assert row is not None
        journal.mark(row.id, State.SENT, 250, "ok")
    with sqlite3.connect(journal.path) as db:
        db.execute("UPDATE messages SET queued_at = ?, finished_at = ?", (SENT_AT, SENT_AT))
    return Sent(journal, {d.recipient: d.message_id for d in drafts})


@pytest.fixture
def sent(journal: Journal) -> Iterator[Sent]:
    people = [e["recipient"] for folder in ("formats", "heldout")
              for e in expected(folder).values() if e["kind"] != "other"]
    yield mailed(journal, [*sorted(set(people)), "ada@example.org", "kim@example.org"])


def outcome(sent: Sent, folder: str, name: str) -> tuple[bool, Verdict]:
    """Whether a fixture's verdict is the expected one: the right class, and
    for a bounce, delay or reply exactly the right recipient."""
    want = expected(folder)[name]
    recipient = want["recipient"]
    verdict = sent.verdict(load(FIXTURES / folder / name, sent.ids.get(recipient, "<x@y>")))
    rows = [r.recipient for r in verdict.rows]
    if want["kind"] in ("other", "auto-reply"):
        right = verdict.kind is Kind(want["kind"]) or (
            want["kind"] == "other" and verdict.kind is Kind.OTHER)
    else:
        right = verdict.kind is Kind(want["kind"]) and rows == [recipient]
    return right, verdict


@pytest.mark.parametrize("name", sorted(expected("formats")))
def test_each_servers_format(sent: Sent, name: str) -> None:
    right, verdict = outcome(sent, "formats", name)
    assert right, (verdict.kind, verdict.rows, verdict.note)
    if verdict.kind is Kind.BOUNCE:  # matched by the returned Message-ID when there is one
        assert verdict.note and (ADDRESS_MATCH in verdict.note) == (not verdict.finding.refers_to)


def test_the_held_out_set_meets_the_issues_figures(sent: Sent) -> None:
    wanted = expected("heldout")
    results = {name: outcome(sent, "heldout", name) for name in sorted(wanted)}
    bounces = [n for n in wanted if wanted[n]["kind"] in ("bounce", "soft-bounce")]
    right = [n for n in bounces if results[n][0]]
    false = [n for n, (_, v) in results.items()
             if v.kind in (Kind.BOUNCE, Kind.SOFT)
             and [r.recipient for r in v.rows] != [wanted[n]["recipient"]]]
    calm = [n for n in wanted if wanted[n]["kind"] in ("delay", "auto-reply", "other")]
    replies = [n for n in wanted if wanted[n]["kind"] == "reply"]
    crashes = [n for n, (_, v) in results.items() if v.kind is Kind.UNREADABLE]
    print(f"\nheld out: {len(right)}/{len(bounces)} bounces with the right recipient, "
          f"{len(false)} false positives, {sum(results[n][0] for n in calm)}/{len(calm)} "
          f"delays/auto-replies/other left alone, {sum(results[n][0] for n in replies)}/"
          f"{len(replies)} replies, {len(crashes)} crashes")
    assert len(right) >= 0.95 * len(bounces), sorted(set(bounces) - set(right))
    assert (false, crashes) == ([], [])
    assert all(results[n][0] for n in calm + replies), [
        (n, results[n][1].kind) for n in calm + replies if not results[n][0]]


def test_a_delay_never_bounces_anyone(sent: Sent) -> None:
    for folder in ("formats", "heldout"):
        for name, want in expected(folder).items():
            if want["kind"] == "delay":
                verdict = sent.verdict(load(FIXTURES / folder / name,
                                            sent.ids[want["recipient"]]))
                assert verdict.kind is Kind.DELAY and not verdict.changes


def test_the_delivery_status_part_wins_over_words_in_the_text(sent: Sent) -> None:
    """A delay notice quoting an earlier 550 in its text is still a delay."""
    raw = load(FIXTURES / "formats" / "gmail_delay.eml", sent.ids["gdelay@example.net"])
    raw = raw.replace(b"** Delivery incomplete **",
                      b"The first attempt said: 550 5.1.1 gdelay@example.net user unknown")
    verdict = sent.verdict(raw)
    assert verdict.kind is Kind.DELAY and not verdict.changes


def test_an_auto_reply_from_a_null_return_path_stays_an_auto_reply(sent: Sent) -> None:
    raw = (f"Return-Path: <>\r\nFrom: Otto <oof@example.com>\r\nSubject: Away\r\n"
           f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {sent.ids['oof@example.com']}\r\n\r\n"
           f"I am away; my last attempt failed, please write to kim@example.org.\r\n").encode()
    verdict = sent.verdict(raw)
    assert verdict.kind is Kind.AUTO_REPLY and not verdict.changes


def test_a_mail_systems_notice_naming_a_contact_away_from_any_failure_changes_nothing(
        sent: Sent) -> None:
    """A quarantine digest from postmaster lists a contact; its failure words are elsewhere."""
    raw = (b"From: postmaster@gw.example.org\r\nSubject: Undelivered mail digest\r\n"
           b"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\n"
           b"Held for your review:\r\n  from kim@example.org, 1 message\r\n\r\n\r\n\r\n"
           b"\r\n\r\nIf releasing a message failed, write to us.\r\n")
    verdict = sent.verdict(raw)
    assert not verdict.rows and not verdict.changes


# --- who may change what: the review's reproductions -----------------------------

MALLORY_DSN = """From: Mallory <mallory@attacker.example>
To: alex@example.com
Subject: Undelivered Mail Returned to Sender
Date: Mon, 30 Nov 2099 09:00:00 +0100
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="m"

--m
Content-Type: text/plain

Your mail to ada@example.org could not be delivered.

--m
Content-Type: message/delivery-status

Reporting-MTA: dns; attacker.example

Final-Recipient: rfc822; ada@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 written by mallory

--m--
"""


def test_a_report_from_a_stranger_without_our_message_id_changes_nothing(sent: Sent) -> None:
    verdict = sent.verdict(MALLORY_DSN.replace("\n", "\r\n").encode())
    assert not verdict.changes and verdict.rows == ()
    plain = (b"From: mallory@attacker.example\r\nSubject: Mail delivery failed\r\n"
             b"X-Failed-Recipients: ada@example.org\r\n\r\nada@example.org: 550 no such user\r\n")
    assert not sent.verdict(plain).changes
    assert sent.state("ada@example.org") is State.SENT


def test_a_mail_system_bounce_without_a_message_id_matches_by_address(sent: Sent) -> None:
    raw = load(FIXTURES / "heldout" / "address_only_dsn.eml", "")
    verdict = sent.verdict(raw)
    assert verdict.kind is Kind.BOUNCE and [r.recipient for r in verdict.rows] == [
        "addr-only@example.com"]
    assert ADDRESS_MATCH in verdict.note
    before = raw.replace(b"Date: Mon, 30 Nov 2026", b"Date: Mon, 30 Nov 2020")
    assert sent.verdict(before).kind is Kind.OTHER  # written before the mail was sent


def test_replied_is_not_undone_by_a_bounce_matched_only_by_address(sent: Sent) -> None:
    name = "reply_apple.eml"
    reply = sent.verdict(load(FIXTURES / "heldout" / name, sent.ids["apple@example.com"]))
    from mailer.mailbox.inbox import apply
    apply(reply, sent.journal)
    assert sent.state("apple@example.com") is State.REPLIED
    forged = (load(FIXTURES / "heldout" / "address_only_dsn.eml", "")
              .replace(b"addr-only@example.com", b"apple@example.com"))
    verdict = sent.verdict(forged)
    assert verdict.kind is Kind.OTHER and not verdict.rows


def test_a_returned_original_the_campaign_did_not_send_is_unclear(sent: Sent) -> None:
    raw = load(FIXTURES / "formats" / "sendmail.eml", "<someone-elses@example.com>")
    verdict = sent.verdict(raw)
    assert verdict.kind is Kind.UNCLEAR and verdict.rows == () and verdict.addresses == ()
    # our Message-ID, but the one sent to Kim: a bounce for someone else changes nothing
    kims = load(FIXTURES / "formats" / "sendmail.eml", sent.ids["kim@example.org"])
    verdict = sent.verdict(kims)
    assert verdict.kind is Kind.UNCLEAR and verdict.rows == ()


def test_the_display_name_cannot_pose_as_the_address(sent: Sent) -> None:
    raw = (b"From: =?utf-8?q?ada=40example=2Eorg_=3C?= <mallory@attacker.example>\r\n"
           b"Subject: unsubscribe\r\n\r\nunsubscribe\r\n")
    found = classify(raw)
    assert found.sender == "mallory@attacker.example"
    verdict = sent.verdict(raw)  # asks to be removed, but was never mailed: asked about
    assert verdict.addresses == ("mallory@attacker.example",) and verdict.rows == ()


def test_an_unsubscribe_suppresses_its_own_sender_only(sent: Sent) -> None:
    raw = (f"From: Stranger <stranger@example.net>\r\nSubject: Fwd: FOSDEM\r\n"
           f"In-Reply-To: {sent.ids['kim@example.org']}\r\n\r\nremove me\r\n").encode()
    verdict = sent.verdict(raw)
    assert verdict.kind is Kind.UNSUBSCRIBE and verdict.addresses == ("stranger@example.net",)


def test_the_users_own_address_is_never_marked(sent: Sent) -> None:
    # a Zoho-style bounce naming the sender in its text and in X-Failed-Recipients
    raw = load(FIXTURES / "formats" / "zoho.eml", sent.ids["zoho@example.net"]).replace(
        b"Return-Path: <>", b"Return-Path: <>\r\nX-Failed-Recipients: alex@example.com")
    verdict = sent.verdict(raw)
    assert [r.recipient for r in verdict.rows] == ["zoho@example.net"]
    own = sent.verdict(b"From: alex@example.com\r\nSubject: Re: hi\r\n\r\nunsubscribe\r\n")
    assert own.kind is Kind.OTHER


def test_mailbox_full_is_soft_and_changes_no_state(sent: Sent) -> None:
    raw = load(FIXTURES / "formats" / "mailbox_full.eml", sent.ids["full@example.com"])
    verdict = sent.verdict(raw)
    assert verdict.kind is Kind.SOFT and "5.2.2" in verdict.note and not verdict.changes
    from mailer.mailbox.inbox import apply
    apply(verdict, sent.journal)
    assert sent.state("full@example.com") is State.SENT


def test_a_mail_system_notice_naming_nobody_is_no_reply(journal: Journal) -> None:
    sent = mailed(journal, ["pat@example.com"])
    raw = (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
           f"Subject: Your message\r\nIn-Reply-To: {sent.ids['pat@example.com']}\r\n\r\n"
           f"Something happened.\r\n").encode()
    assert sent.verdict(raw).kind is Kind.OTHER


def test_judge_is_pure_of_the_pass(journal: Journal) -> None:
    """judge() with no own address still refuses to mark from an untrusted report."""
    sent = mailed(journal, ["ada@example.org"])
    verdict = judge(classify(MALLORY_DSN.replace("\n", "\r\n").encode()), sent.journal)
    assert verdict.rows == ()
