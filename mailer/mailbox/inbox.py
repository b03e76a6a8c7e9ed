"""Sorting the user's inbox: bounces, unsubscribe requests, auto-replies, replies.

`classify()` looks at one message alone (pure, no journal), in this order:

1. **bounce**: a message that is one by structure or sender (a
   `multipart/report`, `X-Failed-Recipients`, a null Return-Path, a
   mailer-daemon or postmaster sender, a non-delivery subject of a common
   server in a common language) is read by `bounce.read_report`: per
   recipient failed (`bounce`), mailbox full (`soft-bounce`), delayed
   (`delay`) or delivered (a delivery report: left alone), and the returned
   original's Message-ID.  A mail system's message that names nobody is never
   taken for a person's reply.
2. **auto-reply**: RFC 3834 `Auto-Submitted` (anything but `no`),
   `X-Autoreply`/`X-Autorespond`, `Precedence: auto_reply|bulk|junk`, or an
   out-of-office subject (en/de/fr).
3. **unsubscribe**: the subject, or the first line of what the sender wrote
   (quoted text removed by mail-parser-reply; a greeting line skipped), asks
   to be removed and says nothing else (`unsubscribe`, `remove me`,
   `abmelden`, `bitte austragen`, the List-Unsubscribe mailto's
   `Subject: unsubscribe`, ...).  Such a word with more around it, a
   negation, or a strong keyword further down is `unclear`: asked about,
   never applied silently.  A quoted paragraph never counts.
4. anything else is a `reply`.

Addresses are parsed from the raw header; only display names and subjects
are decoded, so `=?utf-8?q?ada=40example.org?= <x@attacker.example>` is
x@attacker.example.  Each message's cost is bounded: folded lines are cut at
FIELD_LIMIT, more than MAX_PARTS nested parts are refused (`Unreadable`), the
reply parser sees a head of REPLY_LIMIT characters, every pattern is linear,
and `sort_one` gives each message MESSAGE_SECONDS behind those bounds.

`judge()` then decides what a finding may change (see its docstring), and
`read_inbox()` sorts what arrived since the first campaign, each message on
its own: one that cannot be read becomes an `unreadable` verdict with the
error, and the pass goes on.  `settle()` records the verdicts; `mark_read()`
is the one change to the server, and only on request.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from enum import StrEnum
from html.parser import HTMLParser
from types import FrameType

from mailparser_reply import EmailReplyParser

from ..addresses import address_key
from ..config import ImapSettings
from ..errors import ImapError
from ..journal import Journal, Row
from ..models import State
from ..sanitize import clean
from . import bounce
from .imap import Mailbox

FIELD_LIMIT = 16 * 1024  # bytes of one folded line: the email package parses longer headers
#                          in quadratic time (400 kB of Subject: half a minute)
MAX_PARTS = 64  # a bounce nests three or four; thousands exhaust the parser's recursion
REPLY_LIMIT = 4000  # characters the reply parser sees (its patterns are quadratic in lines)
NOTE_LIMIT = 300  # characters of a diagnostic or subject kept in the journal
MESSAGE_SECONDS = 10.0  # one message at most (a few ms is usual): a budget behind the bounds
PASS_SECONDS = 600.0  # one inbox pass at most; what is left is sorted next time
QUIET_PASS_SECONDS = 120.0  # run-due's pass: it holds the run lock


class Kind(StrEnum):
    BOUNCE = "bounce"  # permanent failure: the recipient becomes `bounced`
    SOFT = "soft-bounce"  # mailbox full: shown and remembered, not resent on its own
    DELAY = "delay"  # temporary failure notice: nothing changes
    UNSUBSCRIBE = "unsubscribe"  # the sender goes on the suppression list
    UNCLEAR = "unclear"  # maybe an unsubscribe, or a bounce it cannot tie: asked about
    AUTO_REPLY = "auto-reply"  # out of office and the like: noted
    REPLY = "reply"  # a person answered: the recipient becomes `replied`
    OTHER = "other"  # not about any campaign
    UNREADABLE = "unreadable"  # could not be read or sorted: listed, left untouched


RETURNS = (Kind.BOUNCE, Kind.SOFT, Kind.DELAY)


class Unreadable(ValueError):
    """A message refused before parsing (too deeply nested), or over its time budget."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What one message is, on its own."""

    kind: Kind
    sender: str  # the From address, "" if none
    subject: str
    date: datetime | None
    failed: tuple[str, ...] = ()  # a bounce's failed recipients
    refers_to: tuple[str, ...] = ()  # Message-IDs it answers (or, a bounce, returns)
    detail: str = ""  # a bounce's diagnostic, why it is unclear
    returned_to: tuple[str, ...] = ()  # a bounce's returned original: whom it went to
    trusted: bool = False  # a bounce a mail system sent, in a structure a server writes


@dataclass(frozen=True, slots=True)
class Verdict:
    """A finding matched to the journal: what applying it would change."""

    finding: Finding
    kind: Kind  # the finding's kind, or UNCLEAR / OTHER after matching
    rows: tuple[Row, ...] = ()  # the campaign rows it concerns
    note: str = ""

    @property
    def changes(self) -> bool:
        return self.kind in (Kind.BOUNCE, Kind.UNSUBSCRIBE, Kind.REPLY, Kind.UNCLEAR)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Who an unsubscribe (or an unclear one, once confirmed) suppresses:
        its own sender, unless a mail system; nobody for a bounce."""
        sender = self.finding.sender
        if self.finding.kind in RETURNS or not sender or bounce.is_system(sender, ""):
            return ()
        return (sender,)


# --- classify ------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"automatische antwort|abwesenheit|abwesend|nicht im b(ü|ue)ro|vacation|urlaub|"
    r"away from (the )?office|r(é|e)ponse automatique|absence|respuesta autom",
    re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|wg|fw|fwd|sv|antw|antwort|vs)\s*(\[\d+\])?\s*:\s*)+",
                           re.IGNORECASE)
_GREETING = re.compile(
    r"^(hi|hello|hey|dear|hallo|liebe|lieber|sehr geehrte[rs]?|guten (tag|morgen|abend)|"
    r"moin|servus|gr(ü|ue)(ß|ss) (gott|dich|sie))\b[^.!?]{0,40}$",
    re.IGNORECASE)
# a Content-Type naming a multipart or an enclosed message, whatever junk comes first
_NESTING = re.compile(rb"^(?:content-type:|[ \t])[^\r\n]{0,200}?(?:multipart|message)/",
                      re.IGNORECASE | re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n(?:[ \t]*\n)+")

# Unsubscribe wording.  Phrases are folded into a keyword first; a line asks
# clearly when its words are keywords and polite filler only.
_PHRASES = [(re.compile(p, re.IGNORECASE), " unsubscribe ") for p in (
    r"\bopt[- ]?out\b", r"\btake me off\b", r"\bremove me\b", r"\bno more (e-?)?mails?\b",
    r"\bkeine (weiteren )?(e-?)?mails?( mehr)?\b", r"\bnehmen sie mich\b",
    r"\bstreichen sie mich\b", r"\bdon'?t (e-?)?mail me\b", r"\bnicht mehr (an)?schreiben\b",
)]
_STRONG = frozenset({"unsubscribe", "unsubscribed", "unsub", "abmelden", "abmeldung", "austragen",
                     "abbestellen", "optout"})
_WEAK = frozenset({"remove", "stop", "entfernen", "löschen", "loeschen", "streichen"})
_NEGATIONS = frozenset({"not", "don't", "dont", "never", "nicht", "nie", "kein", "keinesfalls"})
# a word list reads best as words
_FILLER = frozenset("""
please pls plz kindly i me my us we you your yours the a this that from of off to for on
list mailing mailinglist newsletter address email e-mail mail mails emails messages
all any future further more now immediately asap want would like wish thanks thank
and or also just only here hereby subscription request
bitte mich mir uns ich wir sie ihr ihre ihrem ihren ihrer ihrer dem der die das den
von aus diesem dieser diese liste verteiler adresse e-mail-adresse mailadresse
danke vielen dank jetzt sofort hiermit möchte moechte will gerne gern auch nur und oder
weitere weiteren mehr zukünftig zukuenftig künftig kuenftig anfrage
""".split())  # noqa: SIM905
_WORD = re.compile(r"[\w'-]+")
_REPLIES = EmailReplyParser(languages=["en", "de"])  # its patterns are compiled once


def classify(raw: bytes) -> Finding:
    """What one message is.  Raises `Unreadable` for a message nested too
    deeply to parse; its time is bounded (see the module's docstring)."""
    if len(_NESTING.findall(raw)) > MAX_PARTS:
        raise Unreadable(f"more than {MAX_PARTS} nested MIME parts")
    # compat32: headers stay strings, read as written (several times faster than
    # the modern policy, which parses a header on every read); the one call
    # compat32 breaks, EmailMessage.get_body, is replaced by _body.
    msg = email.message_from_bytes(_bounded(raw), policy=email.policy.compat32)
    headers = bounce.raw_headers(msg)
    display, sender = _from(headers.get("from", ""))
    subject = _decoded(headers.get("subject", ""))
    when = _date(headers.get("date", ""))
    threads = headers.get("in-reply-to", "") + " " + headers.get("references", "")
    replied = tuple(dict.fromkeys(_message_ids(threads)))
    system = bounce.is_system(sender, display) or bounce.is_list_server(sender, headers)
    if "disposition-notification" in headers.get("content-type", "").lower():
        return Finding(Kind.AUTO_REPLY, sender, subject, when, (), replied,
                       "a read receipt (RFC 8098)")
    if bounce.looks_like_bounce(msg, headers, system, subject):
        report = bounce.read_report(msg, headers, system, subject)
        found = _returned(report, sender, subject, when)
        if found is not None:
            return found
        if system:  # a mail system's notice naming nobody is no person's reply
            return Finding(Kind.OTHER, sender, subject, when, (), replied,
                           "from a mail system, names no recipient")
    if _is_auto_reply(headers, subject):
        return Finding(Kind.AUTO_REPLY, sender, subject, when, (), replied)
    intent, why = _unsubscribe_intent(subject, _latest_reply(msg))
    if intent is not None:
        return Finding(intent, sender, subject, when, (), replied, why)
    return Finding(Kind.REPLY, sender, subject, when, (), replied)


def _returned(report: bounce.Report, sender: str, subject: str,
              when: datetime | None) -> Finding | None:
    """A bounce's finding: the hard failures if any, else the mailbox-full
    ones, else the delays; None when it names no failure and returns nothing."""
    ids = report.returned.message_ids
    trusted = report.structural and report.from_system
    if not (report.structural or report.from_system):  # a bounce-like subject, no more
        return None
    for kind, wanted in ((Kind.BOUNCE, "hard"), (Kind.SOFT, "soft"), (Kind.DELAY, "delay")):
        failures = report.of(wanted)
        if failures:
            failed = tuple(sorted({clean(f.address) for f in failures}))
            return Finding(kind, sender, subject, when, failed, ids, failures[0].diagnostic,
                           report.returned.to, trusted)
    if report.of("success"):
        return Finding(Kind.OTHER, sender, subject, when, (), ids, "a delivery report")
    if ids and (report.from_system or bounce.BOUNCE_SUBJECT.search(subject)):
        # the original came back, no recipient named: its To says whom it was for
        kind = Kind.DELAY if report.temporary else Kind.BOUNCE
        return Finding(kind, sender, subject, when, (), ids, clean(subject)[:NOTE_LIMIT],
                       report.returned.to, False)
    return None


def _bounded(raw: bytes) -> bytes:
    """The message with every folded line (a line and its indented
    continuations) cut to FIELD_LIMIT bytes."""
    out: list[bytes] = []
    run = 0
    for line in raw.splitlines(keepends=True):
        run = run + len(line) if line.startswith((b" ", b"\t")) else len(line)
        if run > FIELD_LIMIT:
            keep = FIELD_LIMIT - (run - len(line))
            if keep <= 0:
                continue
            line = line[:keep].rstrip(b"\r\n") + b"\r\n"
        out.append(line)
    return b"".join(out)


def _decoded(value: str, limit: int = NOTE_LIMIT) -> str:
    """A header's text with RFC 2047 words decoded, cleaned and cut to `limit`."""
    if not value.isascii():  # raw UTF-8 (RFC 6532), which the parser kept escaped
        value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    try:
        text = str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, MessageError):  # undecodable words
        text = value
    return clean(text)[:limit]


def _from(value: str) -> tuple[str, str]:
    """(display name decoded, address as written): the address comes from the
    raw header, so an encoded display name can never pose as one."""
    name, address = parseaddr(value)
    return _decoded(name), clean(address) if "@" in address else ""


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(_decoded(value))
    except (TypeError, ValueError, IndexError):
        return None


def _message_ids(text: str) -> Iterator[str]:
    yield from re.findall(r"<[^<>\s]+>", text)


def _is_auto_reply(headers: dict[str, str], subject: str) -> bool:
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if any(h in headers for h in ("x-autoreply", "x-autorespond", "x-autoresponder")):
        return True
    if headers.get("precedence", "").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECT.search(subject))


class _HtmlText(HTMLParser):
    """Visible text of an HTML-only mail, one line per block, quotes left out."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "blockquote":
            self.quoted += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote" and self.quoted:
            self.quoted -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.quoted:
            self.parts.append(data)


def _body(msg: Message) -> Message | None:
    """The first plain-text part that is no attachment, else the first HTML
    one, looking through multiparts but not into enclosed messages."""
    found: dict[str, Message] = {}
    stack = [msg]
    while stack:
        part = stack.pop()
        payload = part.get_payload()
        if part.get_content_maintype() == "multipart" and isinstance(payload, list):
            stack += reversed([p for p in payload if isinstance(p, Message)])
        elif part.get_content_disposition() != "attachment":
            found.setdefault(part.get_content_type(), part)
    return found.get("text/plain") or found.get("text/html")


def _latest_reply(msg: Message) -> str:
    """What the sender wrote themselves: the head of the plain (else HTML)
    body without the quoted earlier mail."""
    body = _body(msg)
    if body is None:
        return ""
    text = bounce.text_of(body)
    if body.get_content_subtype() == "html":
        parser = _HtmlText()
        parser.feed(text[:bounce.TEXT_LIMIT])
        text = "".join(parser.parts)
    text = _BLANK_RUNS.sub("\n\n", text.replace("\r\n", "\n"))[:REPLY_LIMIT]
    text = "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(">"))  # inline-quoted lines
    return str(_REPLIES.parse_reply(text=text))


def _words(text: str) -> list[str]:
    text = text.casefold()
    for pattern, keyword in _PHRASES:
        text = pattern.sub(keyword, text)
    return [w.strip("'-") for w in _WORD.findall(text.replace("opt-out", "optout"))]


def _line_intent(text: str) -> Kind | None:
    """UNSUBSCRIBE when the line asks for nothing else, UNCLEAR when an
    unsubscribe word comes with more, None when there is none."""
    words = [w for w in _words(text) if w]
    keywords = [w for w in words if w in _STRONG or w in _WEAK]
    if not keywords:
        return None
    if any(w in _NEGATIONS for w in words):
        return Kind.UNCLEAR
    if all(w in _STRONG or w in _WEAK or w in _FILLER for w in words):
        return Kind.UNSUBSCRIBE
    return Kind.UNCLEAR


def _unsubscribe_intent(subject: str, reply: str) -> tuple[Kind | None, str]:
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    if lines and _GREETING.match(lines[0]):
        lines = lines[1:]
    first = lines[0] if lines else ""
    stripped = _REPLY_PREFIX.sub("", subject)
    by_subject, by_line = _line_intent(stripped), _line_intent(first)
    rest = " ".join(lines[1:])
    negated = any(w in _NEGATIONS for w in _words(first))
    if Kind.UNSUBSCRIBE in (by_subject, by_line) and not negated:
        return Kind.UNSUBSCRIBE, f"asks to be removed: {clean(first or stripped)}"[:NOTE_LIMIT]
    if by_subject or by_line or any(w in _STRONG for w in _words(rest)):
        return Kind.UNCLEAR, "mentions unsubscribing, but not plainly"
    return None, ""


def unreadable(raw: bytes, err: BaseException) -> Finding:
    """The finding for a message that could not be sorted: its sender and
    subject if the header can be read at all, and the error in one line."""
    try:
        head = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[:FIELD_LIMIT])
        headers = bounce.raw_headers(head)
        sender, subject = _from(headers.get("from", ""))[1], _decoded(headers.get("subject", ""))
    except Exception:
        sender = subject = ""
    why = clean(f"{type(err).__name__}: {err}" if not isinstance(err, Unreadable) else str(err))
    return Finding(Kind.UNREADABLE, sender, subject, None, detail=why[:NOTE_LIMIT])


# --- judge and apply -------------------------------------------------------------

ADDRESS_MATCH = "matched by address"
CLOCK_SKEW = 600.0  # seconds a bounce's Date may be earlier than the send it reports


def judge(finding: Finding, journal: Journal, own: frozenset[str] = frozenset(),
          arrived: datetime | None = None) -> Verdict:
    """Match a finding to the campaigns it concerns.  `own`: the user's
    addresses (address keys), never marked; `arrived`: when the server got
    the message (else its Date header is believed).

    A bounce changes a recipient when the original it returns carries the
    Message-ID sent to that recipient; without any returned Message-ID, when
    it is `trusted` (a mail system's report in a server's structure) and
    names a recipient mailed before it was written ("matched by address";
    `replied` then stays).  A returned original the campaigns did not send, or
    sent to someone else, changes nothing and is unclear.  Anything else
    matches by the Message-IDs it answers, else by its sender."""
    if finding.kind in (Kind.OTHER, Kind.UNREADABLE):
        return Verdict(finding, finding.kind, (), finding.detail)
    if finding.kind in RETURNS:
        return _judge_return(finding, journal, own, arrived or finding.date)
    if address_key(finding.sender) in own:
        return Verdict(finding, Kind.OTHER, (), "from your own address")
    by_id = journal.by_message_id(finding.refers_to)
    row = by_id or (journal.by_address(finding.sender) if finding.sender else None)
    if row is None:
        if finding.kind is Kind.UNSUBSCRIBE:  # about some other mail of the user's
            return Verdict(finding, Kind.UNCLEAR, (), "asks to be removed, but was never mailed")
        return Verdict(finding, Kind.OTHER)
    return Verdict(finding, finding.kind, (row,), finding.detail)


def _judge_return(finding: Finding, journal: Journal, own: frozenset[str],
                  arrived: datetime | None) -> Verdict:
    failed = {address_key(a) for a in finding.failed} - own
    if finding.refers_to:
        row = journal.by_message_id(finding.refers_to)
        if row is None:
            return Verdict(finding, Kind.UNCLEAR, (), "returns a message no campaign sent")
        key = address_key(row.recipient)
        went_to = {address_key(a) for a in finding.returned_to}
        if key in own or (failed and key not in failed) or (
                not failed and went_to and key not in went_to):
            named = ", ".join(finding.failed or finding.returned_to) or "someone else"
            return Verdict(finding, Kind.UNCLEAR, (),
                           f"returns the mail sent to {row.recipient}, but names {named}")
        return Verdict(finding, finding.kind, (row,), finding.detail)
    if not finding.trusted:
        return Verdict(finding, Kind.OTHER, (), "not a mail system's report, returns none of "
                                                "the campaigns' messages: left alone")
    sent = [r for r in (journal.by_address(a) for a in sorted(failed)) if r is not None
            and (arrived is None or (r.finished_at or 0) - CLOCK_SKEW <= arrived.timestamp())]
    rows = tuple(r for r in sent if finding.kind is not Kind.BOUNCE or r.state is not State.REPLIED)
    if not rows:
        return Verdict(finding, Kind.OTHER, (), "names nobody the campaigns mailed before it")
    return Verdict(finding, finding.kind, rows, f"{finding.detail} ({ADDRESS_MATCH})")


def apply(verdict: Verdict, journal: Journal) -> None:
    """Record a clear verdict (or an unclear one the user confirmed as an unsubscribe)."""
    f = verdict.finding
    day = f"{f.date:%Y-%m-%d}" if f.date else "undated"
    if verdict.kind is Kind.BOUNCE:
        for row in verdict.rows:
            journal.mark_returned(row.campaign, row.recipient, State.BOUNCED,
                                  verdict.note or f.subject)
    elif verdict.kind is Kind.REPLY:
        for row in verdict.rows:
            journal.mark_returned(row.campaign, row.recipient, State.REPLIED,
                                  f"replied {day}: {f.subject}"[:NOTE_LIMIT])
    elif verdict.kind in (Kind.UNSUBSCRIBE, Kind.UNCLEAR):
        for address in verdict.addresses:
            journal.suppress_add(address, f"{day} asked by mail: {f.subject}"[:NOTE_LIMIT])


@dataclass(frozen=True, slots=True)
class Sorted:
    """One inbox pass: every new message's verdict, by UID, and why the pass
    stopped before the end ("" when it did not)."""

    folder: str
    uidvalidity: int
    verdicts: tuple[tuple[int, Verdict], ...]
    stopped: str = ""

    def of(self, *kinds: Kind) -> list[tuple[int, Verdict]]:
        return [(uid, v) for uid, v in self.verdicts if v.kind in kinds]


@contextlib.contextmanager
def _budget(seconds: float) -> Iterator[None]:
    """Raise Unreadable when the block runs longer than `seconds` (a timer
    signal, which interrupts even a regular expression; in the main thread
    only: elsewhere the bounds on the input alone hold)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise Unreadable(f"sorting it took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sort_one(raw: bytes, journal: Journal, own: frozenset[str],
             arrived: datetime | None = None) -> Verdict:
    """One message's verdict within MESSAGE_SECONDS; whatever goes wrong
    becomes an `unreadable` one."""
    try:
        with _budget(MESSAGE_SECONDS):
            finding = classify(raw)
        return judge(finding, journal, own, arrived)
    except Exception as err:
        finding = unreadable(raw, err)
        return Verdict(finding, Kind.UNREADABLE, (), finding.detail)


def read_inbox(journal: Journal, settings: ImapSettings, *, folder: str = "INBOX",
               pending: bool = True, tls_context: ssl.SSLContext | None = None,
               seconds: float = PASS_SECONDS) -> Sorted:
    """Sort the folder's messages that arrived since the first campaign began
    and were not sorted before, and (with `pending`) the unclear ones nobody
    has decided on yet; reads only (EXAMINE, BODY.PEEK).  After `seconds`
    the pass stops where it is (even inside a slow read) and keeps what it
    sorted; the rest comes next time."""
    start = journal.first_campaign_start()
    if start is None:
        return Sorted(folder, 0, ())
    since = date.fromtimestamp(start - 86400)  # SINCE is a day in the server's time zone
    own = frozenset({address_key(settings.username)} if "@" in settings.username else ())
    verdicts: list[tuple[int, Verdict]] = []
    stopped = ""
    end = time.monotonic() + seconds
    with Mailbox(settings, tls_context=tls_context) as box, box.deadline(seconds):
        validity, uids = box.examine(since, folder)
        known = journal.inbox_known(folder, validity, pending=not pending)
        try:
            for uid, raw, arrived in box.fetch_dated(u for u in uids if u not in known):
                verdicts.append((uid, sort_one(raw, journal, own, arrived)))
                if time.monotonic() > end:
                    break
        except ImapError as err:
            stopped = str(err)
        if time.monotonic() > end:
            stopped = (f"the pass stopped after {seconds:.0f} s; the rest is sorted next time")
    return Sorted(folder, validity, tuple(verdicts), stopped)


# machine mail and requests, done with once recorded; a person's reply stays unread
READ_WHEN_ASKED = (Kind.BOUNCE, Kind.SOFT, Kind.DELAY, Kind.UNSUBSCRIBE, Kind.AUTO_REPLY)


def mark_read(settings: ImapSettings, inbox: Sorted, *,
              tls_context: ssl.SSLContext | None = None) -> int:
    """`mailer inbox --mark-read`: flag the recorded bounces, delay notices,
    unsubscribe requests and auto-replies as read; returns how many."""
    uids = [uid for uid, _ in inbox.of(*READ_WHEN_ASKED)]
    if uids:
        with Mailbox(settings, tls_context=tls_context) as box:
            box.mark_read(inbox.folder, uids)
    return len(uids)


def settle(journal: Journal, inbox: Sorted, *, confirmed: set[int], declined: set[int]) -> None:
    """Apply every clear verdict and the unclear ones the user confirmed as
    unsubscribes, and remember every message: sorted for good, or `unclear`
    while nobody has decided on it (`read_inbox(pending=True)` brings those
    back, so they are asked about at the next terminal run).  An unclear
    bounce, with nobody to ask about, is listed once."""
    for uid, verdict in inbox.verdicts:
        kind = str(verdict.kind)
        if verdict.kind is not Kind.UNCLEAR or uid in confirmed:
            apply(verdict, journal)
        if uid in confirmed:
            kind = "unclear: confirmed"
        elif uid in declined:
            kind = "unclear: declined"
        elif verdict.kind is Kind.UNCLEAR and not verdict.addresses:
            kind = "unclear: listed"
        f = verdict.finding
        journal.inbox_record(inbox.folder, inbox.uidvalidity, uid, kind, f.sender, f.subject,
                             verdict.note)
