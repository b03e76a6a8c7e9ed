"""`mailer inbox`: bounces in every common format, unsubscribe requests (en/de,
the List-Unsubscribe mailto), auto-replies and replies, sorted from a real
Dovecot inbox after a real send to aiosmtpd; the server's flags untouched."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.cli.app import main
from mailer.mailbox.inbox import Kind, Unreadable, classify
from tests.conftest import write_contacts
from tests.imapd import Dovecot
from tests.smtpd import SmtpServer
from tests.test_run_due import send

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "inbox"

# fixture -> (the campaign recipient it concerns, its kind, the failed recipients)
CASES = {
    "bounce_dsn.eml": ("dsn@example.com", Kind.BOUNCE, ("dsn@example.com",)),
    "bounce_postfix.eml": ("postfix@example.net", Kind.BOUNCE, ("postfix@example.net",)),
    "bounce_exim.eml": ("exim@example.org", Kind.BOUNCE, ("exim@example.org",)),
    "bounce_office365.eml": ("exchange@example.com", Kind.BOUNCE, ("exchange@example.com",)),
    "bounce_exchange_legacy.eml": ("legacy@corp.example.com", Kind.BOUNCE,
                                   ("legacy@corp.example.com",)),
    "bounce_gmail.eml": ("gmail@example.net", Kind.BOUNCE, ("gmail@example.net",)),
    "bounce_qmail.eml": ("qmail@example.org", Kind.BOUNCE, ("qmail@example.org",)),
    "delay_dsn.eml": ("delay@example.com", Kind.DELAY, ("delay@example.com",)),
    "unsubscribe_en.eml": ("unsub-en@example.com", Kind.UNSUBSCRIBE, ()),
    "unsubscribe_de.eml": ("unsub-de@example.de", Kind.UNSUBSCRIBE, ()),
    "unsubscribe_mailto.eml": ("mailto@example.org", Kind.UNSUBSCRIBE, ()),
    "out_of_office.eml": ("ooo@example.com", Kind.AUTO_REPLY, ()),
    "out_of_office_de.eml": ("ooo-de@example.de", Kind.AUTO_REPLY, ()),
    "reply_human.eml": ("human@example.com", Kind.REPLY, ()),
    "reply_unclear.eml": ("unclear@example.com", Kind.UNCLEAR, ()),
}
QUIET = "quiet@example.com"  # mailed, and nothing came back


def fixture(name: str, message_id: str = "<original-1@example.com>") -> bytes:
    text = Template((FIXTURES / name).read_text(encoding="utf-8")).safe_substitute(
        msgid=message_id)
    return text.replace("\n", "\r\n").encode("utf-8")


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_fixture_is_sorted_into_its_class(name: str) -> None:
    _, kind, failed = CASES[name]
    found = classify(fixture(name))
    assert found.kind is kind
    assert found.failed == failed
    if kind is Kind.BOUNCE and name != "bounce_exchange_legacy.eml":
        assert found.refers_to == ("<original-1@example.com>",)  # the returned original
        assert "5.1.1" in found.detail  # the server's diagnostic, not just a subject


def test_every_fixture_class_is_covered() -> None:
    assert {p.name for p in FIXTURES.glob("*.eml")} == set(CASES)


def reply(body: str, subject: str = "Re: FOSDEM 2026: my contact details") -> bytes:
    return (f"From: Pat <pat@example.com>\r\nTo: alex@example.com\r\nSubject: {subject}\r\n"
            f"In-Reply-To: <original-1@example.com>\r\nContent-Type: text/plain; charset=utf-8"
            f"\r\n\r\n{body}").encode()


@pytest.mark.parametrize(("body", "subject", "kind"), [
    # a quoted paragraph never counts, in either language's quote style
    ("Danke, schön dich kennenzulernen!\r\n\r\nAm Mo., 30. Nov. 2026 um 09:00 Uhr schrieb "
     "Alex <alex@example.com>:\r\n> antworten Sie einfach mit abmelden\r\n", None, Kind.REPLY),
    ("Cheers!\r\n\r\n-----Original Message-----\r\nFrom: Alex\r\n\r\nreply with unsubscribe\r\n",
     None, Kind.REPLY),
    ("Liebe Grüße\r\n> unsubscribe\r\n", None, Kind.REPLY),
    # plain requests
    ("Remove me from your list, please.\r\n", None, Kind.UNSUBSCRIBE),
    ("Bitte nehmen Sie mich aus dem Verteiler.\r\n", None, Kind.UNSUBSCRIBE),
    ("", "Abmelden", Kind.UNSUBSCRIBE),
    ("Hallo Alex,\r\n\r\nabmelden bitte\r\n", None, Kind.UNSUBSCRIBE),
    # a word about it, but not a plain request: asked, never applied on its own
    ("Please don't unsubscribe me, I like your posts.\r\n", None, Kind.UNCLEAR),
    ("Nice to meet you.\r\nShould I unsubscribe from your old list?\r\n", None, Kind.UNCLEAR),
    ("Remove the typo in my name please\r\n", None, Kind.UNCLEAR),
])
def test_unsubscribe_wording(body: str, subject: str | None, kind: Kind) -> None:
    raw = reply(body) if subject is None else reply(body, subject)
    assert classify(raw).kind is kind


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.binary(max_size=3000))
def test_any_bytes_are_sorted_without_an_exception(raw: bytes) -> None:
    classify(raw)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(CASES)), st.integers(0, 4000), st.binary(min_size=1, max_size=40))
def test_damaged_fixtures_are_sorted_without_an_exception(name: str, at: int,
                                                          junk: bytes) -> None:
    raw = fixture(name)
    at = at % len(raw)
    classify(raw[:at] + junk + raw[at + len(junk):])


def test_headers_are_decoded_whichever_way_they_come() -> None:
    raw_utf8 = "From: Jürgen <j@example.de>\r\nSubject: Grüße\r\n\r\nabmelden\r\n".encode()
    encoded = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\n"
               b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n\r\nabmelden\r\n")
    for raw in (raw_utf8, encoded):
        found = classify(raw)
        assert (found.sender, found.subject, found.kind) == ("j@example.de", "Grüße",
                                                             Kind.UNSUBSCRIBE)


def test_a_long_thread_still_refers_to_the_campaign_mail() -> None:
    earlier = " ".join(f"<thread-{i}@mail.example.net>" for i in range(40))
    raw = (f"From: Pat <pat@example.com>\r\nSubject: Re: Re: hi\r\nReferences: {earlier}\r\n"
           f" <original-1@example.com>\r\n\r\nSee you!\r\n").encode()
    found = classify(raw)
    assert found.kind is Kind.REPLY and found.refers_to[-1] == "<original-1@example.com>"


def test_hostile_messages_are_bounded() -> None:
    nested = b"From: x@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    nested += b"".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n"
                       .encode() for i in range(3000))
    with pytest.raises(Unreadable):  # refused before parsing, not a RecursionError
        classify(nested)
    huge_subject = (b"From: x@example.com\r\nSubject: unsubscribe " + b"=?utf-8?q?a?= " * 30000
                    + b"\r\n\r\nhi\r\n")
    found = classify(huge_subject)  # cut, not parsed for half a minute
    assert found.kind is Kind.UNCLEAR and len(found.subject) <= 300
    control = classify("From: x@example.com\r\nSubject: Re: hi\x1b[31m\u202e\r\n\r\nok\r\n"
                       .encode())
    assert found.sender == "x@example.com" and "\x1b" not in control.subject
    request = classify("From: x@example.com\r\nSubject: Re: hi\r\n\r\nunsubscribe\x1b\u202e!"
                       "\r\n".encode())
    assert request.kind is Kind.UNSUBSCRIBE and request.detail.isprintable()


# --- the whole loop: send, fill the inbox, sort it ---------------------------------


def campaign_sent(work: Path, server: SmtpServer) -> dict[str, str]:
    """Mail every recipient the fixtures concern; their Message-IDs by address."""
    people = [recipient for recipient, _, _ in CASES.values()] + [QUIET]
    write_contacts(work, [(p.split("@")[0].title(), p) for p in people])
    result = send("--yes")
    assert result.exit_code == 0, result.output
    assert sorted(server.recipients()) == sorted(people)
    return {r["recipient"]: r["message_id"] for r in status()["recipients"]}


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def status() -> dict[str, Any]:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def states() -> dict[str, str]:
    return {r["recipient"]: r["state"] for r in status()["recipients"]}


def fill_inbox(dovecot: Dovecot, ids: dict[str, str]) -> None:
    dovecot.deliver(*(fixture(name, ids[recipient]) for name, (recipient, _, _) in CASES.items()))
    # and mail that concerns no campaign at all
    dovecot.deliver(b"From: news@example.net\r\nTo: alex@example.com\r\nSubject: Our news"
                    b"\r\nMessage-ID: <news-1@example.net>\r\n\r\nunsubscribe at any time\r\n")


def flags(dovecot: Dovecot) -> dict[int, tuple[bytes, ...]]:
    with dovecot.client() as client:
        client.select_folder("INBOX", readonly=True)
        return {uid: tuple(sorted(data[b"FLAGS"]))
                for uid, data in client.fetch(client.search("ALL"), ["FLAGS"]).items()}


def test_one_inbox_pass_sorts_a_campaigns_replies(work: Path, server: SmtpServer,
                                                  imap_env: Dovecot, isolated_env: Path) -> None:
    ids = campaign_sent(work, server)
    fill_inbox(imap_env, ids)
    with imap_env.client() as client:  # some messages read or flagged by the user already
        client.select_folder("INBOX")
        client.add_flags([1, 2], [b"\\Seen"])
        client.add_flags([3], [b"\\Flagged"])
    before = flags(imap_env)

    result = cli("inbox", "--yes")
    assert result.exit_code == 0, result.output
    assert flags(imap_env) == before  # nothing changed on the server

    expected = {recipient: "sent" for recipient, _, _ in CASES.values()} | {QUIET: "sent"}
    for recipient, kind, _ in CASES.values():
        if kind is Kind.BOUNCE:
            expected[recipient] = "bounced"
        elif kind is Kind.REPLY:
            expected[recipient] = "replied"
    assert states() == expected
    counts = status()["counts"]
    assert (counts["bounced"], counts["replied"], counts["sent"]) == (7, 1, 8)
    campaigns = json.loads(cli("campaigns", "--json").output)
    assert campaigns[0]["counts"]["bounced"] == 7
    assert "7 bounced" in cli("campaigns").output
    suppressed = json.loads(cli("suppress", "list", "--json").output)
    assert sorted(s["address"] for s in suppressed) == [
        "mailto@example.org", "unsub-de@example.de", "unsub-en@example.com"]
    assert all("asked by mail" in s["reason"] for s in suppressed)
    rows = {r["recipient"]: r for r in status()["recipients"]}
    assert "5.1.10" in rows["exchange@example.com"]["last_reply"]  # the diagnostic is kept
    assert "Re: FOSDEM 2026" in rows["human@example.com"]["last_reply"]
    assert "unclear@example.com" in result.output  # listed, not applied
    assert "1 unclear message(s) are listed again" in result.output
    report = (isolated_env / "problems-contacts.csv").read_text(encoding="utf-8-sig")
    assert "dsn@example.com,bounced" in report

    again = cli("inbox", "--yes")  # a rerun looks only at what it has not sorted
    assert again.exit_code == 0, again.output
    assert "1 message(s) to sort" in again.output and "unclear@example.com" in again.output
    assert states() == expected
    assert flags(imap_env) == before


def test_status_shows_the_campaign_the_inbox_changed_and_who_is_suppressed(
    work: Path, server: SmtpServer, imap_env: Dovecot
) -> None:
    write_contacts(work, [("Dana", "dsn@example.com"), ("Una", "unsub-en@example.com"),
                          ("Quinn", QUIET)])
    assert send("--yes", "--campaign", "fosdem").exit_code == 0
    ids = {r["recipient"]: r["message_id"] for r in status()["recipients"]}
    write_contacts(work, [("Pat", "pat@example.org")])
    assert send("--yes", "--campaign", "later").exit_code == 0
    assert status()["campaign"] == "later"  # the one sent from last
    imap_env.deliver(fixture("bounce_dsn.eml", ids["dsn@example.com"]),
                     fixture("unsubscribe_en.eml", ids["unsub-en@example.com"]))
    assert cli("inbox", "--yes").exit_code == 0
    data = status()
    assert data["campaign"] == "fosdem" and data["suppressed"] == 1
    assert {r["recipient"]: (r["state"], r["suppressed"]) for r in data["recipients"]} == {
        "dsn@example.com": ("bounced", False), "unsub-en@example.com": ("sent", True),
        QUIET: ("sent", False)}
    table = cli("status").output
    assert "Campaign 'fosdem'" in table and "1 suppressed" in table
    assert any("unsub-en@example.com" in line and "sent, suppressed" in line
               for line in table.splitlines())
    assert cli("suppress", "add", "pat@example.org").exit_code == 0  # a suppression changes too
    assert status()["campaign"] == "later"


def test_without_yes_and_without_a_terminal_nothing_changes(work: Path, server: SmtpServer,
                                                            imap_env: Dovecot) -> None:
    ids = campaign_sent(work, server)
    fill_inbox(imap_env, ids)
    result = cli("inbox")
    assert result.exit_code == 0, result.output
    assert "Nothing changed" in result.output and "dsn@example.com" in result.output
    assert set(states().values()) == {"sent"}
    assert json.loads(cli("suppress", "list", "--json").output) == []


def test_without_campaigns_or_without_imap_settings(work: Path, dovecot: Dovecot) -> None:
    assert "No campaigns yet" in cli("inbox", "--yes").output
    cli("suppress", "add", "x@example.com")  # the journal exists now, without campaigns
    result = cli("inbox", "--yes")
    assert result.exit_code == 2
    assert result.output.startswith("mailer: error: No IMAP server configured")


def test_resend_bounced_sends_to_the_corrected_address(work: Path, server: SmtpServer,
                                                       imap_env: Dovecot) -> None:
    write_contacts(work, [("Dana", "dsn@example.com"), ("Quinn", QUIET)])
    assert send("--yes").exit_code == 0
    ids = {r["recipient"]: r["message_id"] for r in status()["recipients"]}
    imap_env.deliver(fixture("bounce_dsn.eml", ids["dsn@example.com"]))
    assert cli("inbox", "--yes").exit_code == 0
    assert states() == {"dsn@example.com": "bounced", QUIET: "sent"}
    rerun = send("--yes")  # a plain rerun says what to do, and mails nobody
    assert "bounced in this campaign" in rerun.output, rerun.output
    assert len(server.recipients()) == 2

    write_contacts(work, [("Dana", "dana@example.com"), ("Quinn", QUIET)])  # the misread fixed
    result = cli("resend", "contacts.csv", "--profile", "profile.toml", "--bounced",
                    "--rate", "none", "--yes")
    assert result.exit_code == 0, result.output
    assert "dsn@example.com -> dana@example.com" in result.output
    assert server.recipients()[2:] == ["dana@example.com"]  # nobody else again
    assert states() == {"dana@example.com": "sent", QUIET: "sent"}
    assert len(imap_env.messages("Sent")) == 3  # the corrected mail is filed too


def test_send_files_sent_copies_unless_told_not_to_or_gmail(work: Path, server: SmtpServer,
                                                           imap_env: Dovecot) -> None:
    result = send("--yes")
    assert result.exit_code == 0, result.output
    assert "Copied 3 sent message(s) to the folder 'Sent'" in result.output
    sent = imap_env.messages("Sent")
    assert sorted(m[0].split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for m in sent) == \
        sorted(r["message_id"] for r in status()["recipients"])
    assert all(b"\\Seen" in flags for _, flags in sent)

    write_contacts(work, [("Dora", "dora@example.com")])
    assert send("--yes", "--campaign", "second", "--no-sent-copy").exit_code == 0
    write_contacts(work, [("Gil", "gil@example.com")])
    assert send("--yes", "--campaign", "third", "--provider", "gmail").exit_code == 0
    assert len(imap_env.messages("Sent")) == 3
    assert len(server.recipients()) == 5


def test_an_unreachable_imap_server_does_not_fail_the_send(work: Path, server: SmtpServer,
                                                           imap_env: Dovecot,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setenv("MAILER_IMAP_PASSWORD", "wrong")
    result = send("--yes")
    assert result.exit_code == 0, result.output
    assert "warning: no copies in your Sent folder this time" in result.output
    assert "wrong" not in result.output
    monkeypatch.setenv("MAILER_IMAP_PASSWORD", imap_env.env()["MAILER_IMAP_PASSWORD"])
    write_contacts(work, [("Dora", "dora@example.com")])
    assert send("--yes", "--campaign", "contacts").exit_code == 0  # files what was missing
    assert len(imap_env.messages("Sent")) == 4


def test_run_due_sorts_the_inbox_for_cron(work: Path, server: SmtpServer,
                                          imap_env: Dovecot) -> None:
    write_contacts(work, [("Una", "unsub-en@example.com"), ("Ulla", "unclear@example.com"),
                          ("Quinn", QUIET)])
    assert send("--yes").exit_code == 0
    quiet = cli("run-due", "--inbox")
    assert (quiet.exit_code, quiet.output) == (0, "")  # nothing new: cron logs stay empty
    ids = {r["recipient"]: r["message_id"] for r in status()["recipients"]}
    imap_env.deliver(fixture("unsubscribe_en.eml", ids["unsub-en@example.com"]),
                     fixture("reply_unclear.eml", ids["unclear@example.com"]))
    result = cli("run-due", "--inbox")
    assert result.exit_code == 0, result.output
    assert "unsub-en@example.com" in result.output and "unclear@example.com" in result.output
    suppressed = json.loads(cli("suppress", "list", "--json").output)
    assert [s["address"] for s in suppressed] == ["unsub-en@example.com"]
    assert cli("run-due", "--inbox").output == ""  # the unclear one is listed once by cron
    at_hand = cli("inbox", "--yes")  # and again whenever the user looks
    assert "1 message(s) to sort" in at_hand.output and "unclear@example.com" in at_hand.output


@pytest.mark.parametrize("answer", [b"y\n", b"n\n"])
def test_at_a_terminal_the_unclear_ones_are_asked_about(work: Path, server: SmtpServer,
                                                       imap_env: Dovecot, answer: bytes) -> None:
    write_contacts(work, [("Ulla", "unclear@example.com"), ("Una", "unsub-en@example.com")])
    assert send("--yes").exit_code == 0
    ids = {r["recipient"]: r["message_id"] for r in status()["recipients"]}
    imap_env.deliver(fixture("reply_unclear.eml", ids["unclear@example.com"]),
                     fixture("unsubscribe_en.eml", ids["unsub-en@example.com"]))
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mailer", "inbox"], cwd=work,
                            env={**os.environ, "PYTHONPATH": str(PROJECT)}, stdin=follower,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(follower)
    os.write(leader, b"y\n" + answer)  # record the clear case; then the unclear one
    out = proc.communicate(timeout=60)[0].decode()
    os.close(leader)
    assert proc.returncode == 0, out
    assert "Record these 1 outcome(s) in the journal?" in out
    assert "never mail unclear@example.com again?" in out
    suppressed = {s["address"] for s in json.loads(cli("suppress", "list", "--json").output)}
    expected = {"unsub-en@example.com"} | ({"unclear@example.com"} if answer == b"y\n" else set())
    assert suppressed == expected
    again = cli("inbox", "--yes")  # decided either way: not asked about again
    assert "0 message(s) to sort" in again.output, again.output


def test_schedule_install_passes_inbox_on_to_run_due(work: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_IMAP_HOST", "imap.example.com")  # --inbox needs an account
    monkeypatch.setenv("MAILER_IMAP_USERNAME", "alex@example.com")
    cron = cli("schedule", "install", "--cron", "--print", "--inbox", "--no-sent-copy")
    assert cron.exit_code == 0, cron.output
    assert " run-due --inbox --no-sent-copy >> " in cron.output


def test_mark_read_flags_only_what_was_dealt_with(work: Path, server: SmtpServer,
                                                  imap_env: Dovecot) -> None:
    ids = campaign_sent(work, server)
    fill_inbox(imap_env, ids)  # UIDs 1.. in the order of CASES, then the unrelated mail
    result = cli("inbox", "--yes", "--mark-read")
    assert result.exit_code == 0, result.output
    dealt = (Kind.BOUNCE, Kind.DELAY, Kind.UNSUBSCRIBE, Kind.AUTO_REPLY)
    expected = [kind in dealt for _, kind, _ in CASES.values()] + [False]
    assert f"Flagged {sum(expected)} message(s) as read." in result.output
    seen = flags(imap_env)
    assert [b"\\Seen" in seen[uid] for uid in sorted(seen)] == expected


def test_a_whole_folder_pass_records_everything_but_what_it_cannot_read(
        work: Path, server: SmtpServer, imap_env: Dovecot) -> None:
    """Every server format, reply and notice in one folder with two messages
    that cannot be read: those are listed with their UID, the rest recorded."""
    formats = FIXTURES / "formats"
    wanted = json.loads((formats / "expected.json").read_text(encoding="utf-8"))
    people = sorted({w["recipient"] for w in wanted.values()})
    write_contacts(work, [(p.split("@")[0].title(), p) for p in people])
    assert send("--yes").exit_code == 0
    ids = {r["recipient"]: r["message_id"] for r in status()["recipients"]}
    bomb = b"From: bomb@example.net\r\nSubject: deep\r\n" + (
        b"Content-Type: message/rfc822\r\n\r\n" * 985) + b"x\r\n"
    imap_env.deliver(bomb)
    for name, want in sorted(wanted.items()):
        text = Template((formats / name).read_text(encoding="utf-8")).safe_substitute(
            msgid=ids[want["recipient"]])
        imap_env.deliver(text.replace("\n", "\r\n").encode())
    imap_env.deliver(bomb.replace(b"bomb@", b"bomb2@"))

    result = cli("inbox", "--yes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["recorded"] is True and data["stopped"] is None
    by_uid = {m["uid"]: m for m in data["messages"]}
    last = len(wanted) + 2
    assert [by_uid[u]["class"] for u in (1, last)] == ["unreadable", "unreadable"]
    assert "nested" in by_uid[1]["note"] and by_uid[last]["sender"] == "bomb2@example.net"
    assert data["counts"]["unreadable"] == 2
    expected_states = {"bounce": "bounced", "reply": "replied"}
    assert states() == {w["recipient"]: expected_states.get(w["kind"], "sent")
                        for w in wanted.values()}

    again = cli("inbox", "--yes")  # everything was recorded, the unreadable ones too
    assert "0 message(s) to sort" in again.output, again.output


def test_the_report_lists_unreadable_and_unclear_messages_with_their_uid(
        work: Path, server: SmtpServer, imap_env: Dovecot) -> None:
    write_contacts(work, [("Ulla", "unclear@example.com")])
    assert send("--yes").exit_code == 0
    ids = {r["recipient"]: r["message_id"] for r in status()["recipients"]}
    imap_env.deliver(fixture("reply_unclear.eml", ids["unclear@example.com"]),
                     b"From: x@example.net\r\nSubject: bomb\r\n"
                     + b"Content-Type: message/rfc822\r\n\r\n" * 985)
    result = cli("inbox", "--yes")
    assert result.exit_code == 0, result.output
    assert "UID 1: unclear@example.com" in result.output
    assert "UID 2: x@example.net" in result.output
    assert "1 message(s) could not be read" in result.output
    listed = json.loads(cli("inbox", "--json").output)  # without --yes: nothing recorded
    assert listed["recorded"] is False and [m["uid"] for m in listed["messages"]] == [1]

