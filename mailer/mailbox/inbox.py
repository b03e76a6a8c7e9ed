"""Sorting the user's inbox: bounces, unsubscribe requests, auto-replies, replies.

`classify()` looks at one message alone (pure, no journal), in this order:

1. **bounce**: a message that looks like one (a `multipart/report` DSN, an
   `X-Failed-Recipients` header, a mailer-daemon or postmaster sender, a null
   Return-Path or a bounce subject) goes to flufl.bounce, whose detectors know
   RFC 3464 and the formats of Postfix, Exim, qmail, Exchange, Gmail and many
   more.  Permanent failures are a `bounce`, delay notices a `delay`.
2. **auto-reply**: RFC 3834 `Auto-Submitted` (anything but `no`),
   `X-Autoreply`/`X-Autorespond`, `Precedence: auto_reply|bulk|junk`, or an
   out-of-office subject (en/de).
3. **unsubscribe**: the subject, or the first line of what the sender wrote
   (quoted text removed by mail-parser-reply; a greeting line skipped), asks
   to be removed and says nothing else (`unsubscribe`, `remove me`,
   `abmelden`, `bitte austragen`, the List-Unsubscribe mailto's
   `Subject: unsubscribe`, ...).  Such a word with more around it, a
   negation, or a strong keyword further down is `unclear`: asked about,
   never applied silently.  A quoted paragraph never counts.
4. anything else is a `reply`.

`judge()` then matches a finding to the journal: by the Message-IDs it refers
to (In-Reply-To, References, the returned original's Message-ID), else by
address (the failed recipient of a bounce, the sender of anything else).  A
message that matches no campaign is `other` and changes nothing.

`read_inbox()` sorts what arrived since the first campaign and was not sorted
before (the journal's `inbox` table), reading only; `settle()` records the
verdicts; `mark_read()` is the one change to the server, and only on request.
"""

from __future__ import annotations

import email
import email.policy
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import parseaddr, parsedate_to_datetime
from enum import StrEnum
from html.parser import HTMLParser

from flufl.bounce import all_failures
from mailparser_reply import EmailReplyParser

from ..addresses import address_key
from ..config import ImapSettings
from ..journal import Journal, Row
from ..models import State
from ..sanitize import clean
from .imap import Mailbox

TEXT_LIMIT = 64 * 1024  # characters of a body looked at: the first lines are what counts
FIELD_LIMIT = 16 * 1024  # bytes of one folded line: the email package parses longer headers
#                          in quadratic time (400 kB of Subject: half a minute)
MAX_MULTIPARTS = 64  # a bounce nests three or four; thousands exhaust the parser's recursion
NOTE_LIMIT = 300  # characters of a diagnostic or subject kept in the journal


class Kind(StrEnum):
    BOUNCE = "bounce"  # permanent failure: the recipient becomes `bounced`
    DELAY = "delay"  # temporary failure notice: nothing changes
    UNSUBSCRIBE = "unsubscribe"  # the sender goes on the suppression list
    UNCLEAR = "unclear"  # maybe an unsubscribe (or an odd bounce): asked about
    AUTO_REPLY = "auto-reply"  # out of office and the like: noted
    REPLY = "reply"  # a person answered: the recipient becomes `replied`
    OTHER = "other"  # not about any campaign


@dataclass(frozen=True, slots=True)
class Finding:
    """What one message is, on its own."""

    kind: Kind
    sender: str  # the From address, "" if none
    subject: str
    date: datetime | None
    failed: tuple[str, ...] = ()  # a bounce's failed recipients
    refers_to: tuple[str, ...] = ()  # Message-IDs it answers or returns
    detail: str = ""  # a bounce's diagnostic, why it is unclear


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
        the sender, unless a mail system, and the recipient it concerns."""
        sender = self.finding.sender
        found = [sender if not _is_daemon(sender) else "", *(r.recipient for r in self.rows)]
        return tuple(dict.fromkeys(a for a in found if a))


# --- classify ------------------------------------------------------------------

_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "microsoftexchange")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (has )?failed|"
    r"failure notice|returned mail|mail delivery (failed|subsystem)|could not be delivered|"
    r"unzustellbar|nicht zustellbar|non[- ]?remis|delivery delayed|delayed mail",
    re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"automatische antwort|abwesenheit|abwesend|nicht im b(ü|ue)ro|vacation|urlaub|"
    r"away from (the )?office|r(é|e)ponse automatique",
    re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|wg|fw|fwd|sv|antw|antwort|vs)\s*(\[\d+\])?\s*:\s*)+",
                           re.IGNORECASE)
_GREETING = re.compile(
    r"^(hi|hello|hey|dear|hallo|liebe|lieber|sehr geehrte[rs]?|guten (tag|morgen|abend)|"
    r"moin|servus|gr(ü|ue)(ß|ss) (gott|dich|sie))\b[^.!?]{0,40}$",
    re.IGNORECASE)
_SMTP_CODE = re.compile(  # "550 5.1.1 ...", "550 ...", Exchange's "#5.1.1"
    r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*|\b5\d\d\b\s.*|#5\.\d{1,3}\.\d{1,3}\b.*")
_MULTIPART = re.compile(rb"content-type:\s*multipart/", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)

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
    """What one message is; never raises on malformed input, and its time is
    bounded: folded lines are cut at FIELD_LIMIT, deep nesting is refused."""
    if len(_MULTIPART.findall(raw)) > MAX_MULTIPARTS:
        return Finding(Kind.OTHER, "", "", None, detail="too many nested MIME parts")
    raw = _bounded(raw)
    # One parse, compat32: the detectors expect it, and it is several times
    # faster than the default policy, which re-parses a header on every read.
    msg = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.compat32)
    assert isinstance(msg, EmailMessage)
    sender = _address(_header(msg, "From"))
    subject = _header(msg, "Subject")
    date = _date(msg)
    threads = _header(msg, "In-Reply-To", FIELD_LIMIT) + " " + _header(msg, "References",
                                                                       FIELD_LIMIT)
    replied = tuple(dict.fromkeys(_message_ids(threads)))
    if _looks_like_bounce(msg, sender, subject):
        try:
            temporary, permanent = all_failures(msg)
        except Exception:  # a detector choking on a malformed message: no detection
            temporary = permanent = frozenset()
        original = _original_ids(msg)
        if permanent:
            failed = tuple(sorted({clean(a.decode("ascii", "replace")) for a in permanent}))
            return Finding(Kind.BOUNCE, sender, subject, date, failed, original,
                           _diagnostic(msg, failed, subject))
        if temporary:
            failed = tuple(sorted({clean(a.decode("ascii", "replace")) for a in temporary}))
            return Finding(Kind.DELAY, sender, subject, date, failed, original,
                           _diagnostic(msg, failed, subject))
        if original:
            return Finding(Kind.UNCLEAR, sender, subject, date, (), original,
                           "looks like a bounce, but names no failed recipient")
    if _is_auto_reply(msg, subject):
        return Finding(Kind.AUTO_REPLY, sender, subject, date, (), replied)
    intent, why = _unsubscribe_intent(subject, _latest_reply(msg))
    if intent is not None:
        return Finding(intent, sender, subject, date, (), replied, why)
    return Finding(Kind.REPLY, sender, subject, date, (), replied)


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


def _header(msg: Message, name: str, limit: int = NOTE_LIMIT) -> str:
    """A header's decoded text (RFC 2047 words decoded), cleaned and cut to
    `limit` characters; "" if absent."""
    wanted = name.lower()
    value = next((v for k, v in msg.raw_items() if k.lower() == wanted), None)
    if value is None:
        return ""
    if not value.isascii():  # raw UTF-8 (RFC 6532), which the parser kept escaped
        value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    try:
        text = str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, HeaderParseError):  # undecodable words
        text = str(value)
    return clean(text)[:limit]


def _address(value: str) -> str:
    address = parseaddr(value)[1]
    return address if "@" in address else ""


def _date(msg: Message) -> datetime | None:
    try:
        return parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None


def _message_ids(text: str) -> Iterator[str]:
    yield from re.findall(r"<[^<>\s]+>", text)


def _is_daemon(address: str) -> bool:
    return address.partition("@")[0].lower().startswith(_DAEMONS)


def _looks_like_bounce(msg: Message, sender: str, subject: str) -> bool:
    return (msg.get_content_type() == "multipart/report"
            or msg.get("X-Failed-Recipients") is not None
            or _is_daemon(sender)
            or _header(msg, "Return-Path") == "<>"
            or bool(_BOUNCE_SUBJECT.search(subject)))


def _original_ids(msg: Message) -> tuple[str, ...]:
    """Message-IDs of the returned original: its headers in a message/rfc822 or
    text/rfc822-headers part, else a Message-ID line quoted in the text."""
    found: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found += _message_ids(_header(inner, "Message-ID", FIELD_LIMIT))
        elif kind == "text/rfc822-headers" or (kind == "text/plain" and not found):
            found += _MESSAGE_ID.findall(_text(part))
    return tuple(dict.fromkeys(found))


def _text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError):
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:TEXT_LIMIT].decode(charset, "replace")
    except LookupError:  # an unknown charset name
        return payload[:TEXT_LIMIT].decode("utf-8", "replace")


def _diagnostic(msg: Message, failed: tuple[str, ...], subject: str) -> str:
    """The server's words: the DSN's Status and Diagnostic-Code for a failed
    recipient, else the first SMTP reply quoted in the text, else the subject."""
    wanted = {address_key(a) for a in failed}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            recipient = _header(block, "Final-Recipient").rpartition(";")[2].strip(" <>")
            if wanted and address_key(recipient) not in wanted:
                continue
            status = _header(block, "Status")
            code = _header(block, "Diagnostic-Code").partition(";")[2].strip()
            if status or code:
                return clean(" ".join(x for x in (status, code) if x))[:NOTE_LIMIT]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            match = _SMTP_CODE.search(_text(part))
            if match:
                return clean(match.group(0))[:NOTE_LIMIT]
    return subject


def _is_auto_reply(msg: Message, subject: str) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    if any(msg.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if _header(msg, "Precedence").lower() in ("auto_reply", "bulk", "junk"):
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


def _latest_reply(msg: EmailMessage) -> str:
    """What the sender wrote themselves: the plain (else HTML) body without
    the quoted earlier mail."""
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError, IndexError):
        body = None
    if body is None:
        return ""
    text = _text(body)
    if body.get_content_subtype() == "html":
        parser = _HtmlText()
        parser.feed(text)
        text = "".join(parser.parts)
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


# --- judge and apply -------------------------------------------------------------


def judge(finding: Finding, journal: Journal) -> Verdict:
    """Match a finding to the campaigns it concerns."""
    if finding.kind is Kind.OTHER:
        return Verdict(finding, Kind.OTHER)
    by_id = journal.by_message_id(finding.refers_to)
    if finding.kind in (Kind.BOUNCE, Kind.DELAY):
        failed = {address_key(a) for a in finding.failed}
        if by_id is not None and address_key(by_id.recipient) in failed:
            rows = [by_id]
        else:
            rows = [r for r in (journal.by_address(a) for a in finding.failed) if r is not None]
        if rows:
            return Verdict(finding, finding.kind, tuple(rows), finding.detail)
        if by_id is not None:  # our message came back, but for another address (a forward?)
            return Verdict(finding, Kind.UNCLEAR, (by_id,),
                           f"returned for {', '.join(finding.failed)}, not for the recipient")
        return Verdict(finding, Kind.OTHER)
    row = by_id or (journal.by_address(finding.sender) if finding.sender else None)
    if row is None:
        if finding.kind is Kind.UNSUBSCRIBE:  # about some other mail of the user's
            return Verdict(finding, Kind.UNCLEAR, (), "asks to be removed, but was never mailed")
        return Verdict(finding, Kind.OTHER)
    return Verdict(finding, finding.kind, (row,), finding.detail)


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
    """One inbox pass: every new message's verdict, by UID."""

    folder: str
    uidvalidity: int
    verdicts: tuple[tuple[int, Verdict], ...]

    def of(self, *kinds: Kind) -> list[tuple[int, Verdict]]:
        return [(uid, v) for uid, v in self.verdicts if v.kind in kinds]


def read_inbox(journal: Journal, settings: ImapSettings, *, folder: str = "INBOX",
               pending: bool = True, tls_context: ssl.SSLContext | None = None) -> Sorted:
    """Sort the folder's messages that arrived since the first campaign began
    and were not sorted before, and (with `pending`) the unclear ones nobody
    has decided on yet; reads only (EXAMINE, BODY.PEEK)."""
    start = journal.first_campaign_start()
    if start is None:
        return Sorted(folder, 0, ())
    since = date.fromtimestamp(start - 86400)  # SINCE is a day in the server's time zone
    with Mailbox(settings, tls_context=tls_context) as box:
        validity, uids = box.examine(since, folder)
        known = journal.inbox_known(folder, validity, pending=not pending)
        verdicts = tuple((uid, judge(classify(raw), journal))
                         for uid, raw in box.fetch(u for u in uids if u not in known))
    return Sorted(folder, validity, verdicts)


# machine mail and requests, done with once recorded; a person's reply stays unread
READ_WHEN_ASKED = (Kind.BOUNCE, Kind.DELAY, Kind.UNSUBSCRIBE, Kind.AUTO_REPLY)


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
    back, so they are asked about at the next terminal run)."""
    for uid, verdict in inbox.verdicts:
        kind = str(verdict.kind)
        if verdict.kind is not Kind.UNCLEAR or uid in confirmed:
            apply(verdict, journal)
        if uid in confirmed:
            kind = "unclear: confirmed"
        elif uid in declined:
            kind = "unclear: declined"
        f = verdict.finding
        journal.inbox_record(inbox.folder, inbox.uidvalidity, uid, kind, f.sender, f.subject,
                             verdict.note)
