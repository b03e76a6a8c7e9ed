"""What a bounce says: who failed, how badly, and which message came back.

Bounce parsers that work on real mail (sisimai with its 70+ server modules,
listmonk's bounce processing) agree on the order of evidence, and so does this
module:

1. the RFC 3464 `message/delivery-status` part, per recipient: `Action`
   (failed, delayed, or a success: delivered, relayed, expanded), `Status`
   (5.x.x permanent, 4.x.x temporary), `Final-Recipient` / `Original-Recipient`
   and `Diagnostic-Code`; some servers put the same fields in the text;
2. the `X-Failed-Recipients` header (Exim, Gmail, and others);
3. flufl.bounce's detectors (qmail, Exchange, Yahoo, Domino, ... in their own
   words);
4. the addresses the notification text names, except the sender's own and
   the mail system's;

and, apart from those, the **returned original** (RFC 3462/6522
`message/rfc822` or `text/rfc822-headers`, RFC 6533 `message/global`, or the
copy that qmail, Exchange 2003, Domino and others paste into the text after a
separator line): its `Message-ID` names the exact message that failed, its
`To` whom it went to.  Deciding who may be marked is `inbox.judge`'s job;
this module only reads.

Every search here is linear in the text: addresses are found by splitting on
delimiters, not by a pattern that backtracks, and the text is cut to a head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses

from flufl.bounce import all_failures

from ..addresses import address_key
from ..sanitize import clean

TEXT_LIMIT = 64 * 1024  # characters of a notification read
NOTE_LIMIT = 300
MAX_NAMED = 20  # addresses taken from a notice's text: a bounce names a few

# Senders of mail systems: the local part (RFC 5321 postmaster, the daemons of
# Sendmail, Postfix, qmail, Exim, Exchange) or the display name they use.
DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "microsoftexchange",
           "mdaemon", "mail.delivery", "maildelivery", "bounce")
_SYSTEM_NAME = re.compile(
    r"mail deliver(y)? (sub)?system|mail delivery service|mail system|mailer.daemon|"
    r"postmaster|delivery status notification|e-?mail delivery|mail administrator",
    re.IGNORECASE)

# Subjects of non-delivery reports of the common servers, in the common languages.
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|not delivered|non.?deliver|delivery status notification|"
    r"delivery (has )?fail|delivery failure|failure notice|failed delivery|returned mail|"
    r"returning message|mail delivery (failed|subsystem|problem)|could not be delivered|"
    r"unable to deliver|delivery notification|mail system error|^delivery status$|"
    r"delivery (delayed|problem|report)|delayed mail|warning: could not send|"
    r"unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|fehler bei der zustellung|"
    r"unzustellbare|non remis|non distribu|impossible de remettre|[eé]chec de (la )?remise|"
    r"no se (puede|pudo) entregar|no entregad|error de entrega|non recapitabil|"
    r"mancato recapito|n[aã]o (foi )?(poss[ií]vel )?entreg|onbestelbaar|niet bezorgd|"
    r"olevererbar|kan ikke leveres|niedostarczon|nedoru[cč]iteln|недостав|не удалось доставить|"
    r"配信不能|配送失敗|配信エラー|配信できません|配信に失敗|エラーメール|无法投递|退信|未送达|"
    r"전달 실패",
    re.IGNORECASE)
# Subjects of reports that the mail did arrive (RFC 3464 success, Exchange's "Delivered:")
_SUCCESS_SUBJECT = re.compile(
    r"^(delivered|relayed|expanded|zugestellt|remis)\b|\(success\)|successful mail delivery|"
    r"delivery (status notification|notification|report):? (\(?success|relayed|delivered)",
    re.IGNORECASE)
# a line that introduces the returned original in a notice's text
_SEPARATOR = re.compile(
    r"original message|returned message|copy of the (original )?message|headers? follow|"
    r"headers? of the original|below this line|original mail as follows|undelivered message|"
    r"message headers|original headers", re.IGNORECASE)
_DELAY_SUBJECT = re.compile(
    r"delay|still being retried|warning|verz[öo]gert|retard|retras|ritard|vertraagd",
    re.IGNORECASE)
# Words of a temporary failure, and of a permanent one, in a text without a DSN.
_DELAY_TEXT = re.compile(
    r"this is a warning only|will (be )?retr(y|ied)|will continue (to try|trying)|"
    r"still (being )?(retried|trying)|has not (yet )?been delivered|not yet been delivered|"
    r"delivery (attempts )?will continue|will keep trying", re.IGNORECASE)
_PERMANENT_TEXT = re.compile(
    r"permanent|given up|giving up|could not be delivered|couldn't be delivered|"
    r"was not delivered|did not reach|undeliverable|user unknown|unknown user|no such user|"
    r"does not exist|doesn't exist|not found|rejected|unable to deliver|failed|"
    r"\b5\d\d\b|\b5\.\d{1,3}\.\d{1,3}\b|nicht zustellbar|unzustellbar|non remis|not listed|"
    r"n'existe pas|no existe", re.IGNORECASE)
_MAILBOX_FULL = re.compile(
    r"\b[45]\.2\.2\b|mailbox (is )?full|over ?quota|quota (exceeded|exceed)|exceeded .{0,20}quota|"
    r"insufficient (system )?storage|mailbox size limit|storage (space|limit)|"
    r"postfach (ist )?voll|bo[iî]te (aux lettres )?pleine|buz[oó]n lleno", re.IGNORECASE)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -]#?[45]\.\d{1,3}\.\d{1,3}\b[^\n]*|\b5\d\d [^\n]*|"
                         r"#5\.\d{1,3}\.\d{1,3}\b[^\n]*")
_REASON = re.compile(r"user unknown|unknown user|no such (user|mailbox|recipient)|"
                     r"does ?n[o']t exist|not (be )?found|not listed|"
                     r"invalid (recipient|address|mailbox)|mailbox (unavailable|full)|quota|"
                     r"account (is )?disabled|"
                     r"unknown recipient|recipient (address )?rejected", re.IGNORECASE)
_HEADER_LINE = re.compile(r"[ \t>]*([A-Za-z][A-Za-z0-9-]{0,40}):[ \t]*(.*)")
_DSN_FIELD = re.compile(r"^[ \t]*(final-recipient|original-recipient|action|status|"
                        r"diagnostic-code|x-actual-recipient)[ \t]*:[ \t]*(.*)$",
                        re.IGNORECASE | re.MULTILINE)
_SPLIT = re.compile(r"[\s<>\"'(),;\[\]{}|]+")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&*+/=?^_`~-]{1,64}@"
                      r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
_SUCCESS = frozenset({"delivered", "relayed", "expanded"})
ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global", "text/rfc822-headers",
                            "message/global-headers"})


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a report names, and what happened to its copy."""

    address: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # the RFC 3463 code, "" if none
    diagnostic: str  # the remote server's words, or ours

    @property
    def kind(self) -> str:
        """'hard', 'soft' (mailbox full), 'delay' or 'success'."""
        if self.action in _SUCCESS:
            return "success"
        if self.action == "delayed" or (self.action != "failed" and self.status.startswith("4")):
            return "delay"
        if _MAILBOX_FULL.search(f"{self.status} {self.diagnostic}"):
            return "soft"
        return "hard"


@dataclass(frozen=True, slots=True)
class Returned:
    """The headers of the message that came back."""

    message_ids: tuple[str, ...]
    to: tuple[str, ...]
    sender: str


@dataclass(frozen=True, slots=True)
class Report:
    """All a bounce says, before it is matched to the journal."""

    failures: tuple[Failure, ...]  # one per recipient named, strongest evidence first
    returned: Returned
    structural: bool  # named by a DSN, X-Failed-Recipients or a known format, not just guessed
    from_system: bool  # a null return path or a mail system's sender
    temporary: bool  # the text speaks of a delay, not of a failure

    def of(self, *kinds: str) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.kind in kinds)


def is_system(sender: str, display: str) -> bool:
    """Whether a From address (or its display name) is a mail system's."""
    local = sender.partition("@")[0].lower()
    return local.startswith(DAEMONS) or bool(_SYSTEM_NAME.search(display))


def is_list_server(sender: str, headers: dict[str, str]) -> bool:
    """fml's error reports: an X-MLServer header, sent by the list's -admin address."""
    return "x-mlserver" in headers and sender.partition("@")[0].lower().endswith("-admin")


def looks_like_bounce(msg: Message, headers: dict[str, str], system: bool, subject: str) -> bool:
    """A bounce by structure, sender or (decoded) subject, before any content is read."""
    kind = msg.get_content_type()
    report = kind == "multipart/report" and "disposition" not in headers.get(
        "content-type", "").lower()  # a read receipt (RFC 8098) is no bounce
    # RFC 3834 auto-replies may come from a null return path too; they say what they are
    replied = headers.get("auto-submitted", "").strip().lower().startswith("auto-replied")
    null = headers.get("return-path", "").strip() == "<>" and not replied
    return (report or "x-failed-recipients" in headers or system or null
            or bool(BOUNCE_SUBJECT.search(subject)))


def read_report(msg: Message, headers: dict[str, str], system: bool, subject: str) -> Report:
    """The failures a bounce names and the original it returns."""
    returned, notice = _returned(msg)
    excluded = {address_key(a) for a in (*_addresses(headers.get("from", "")),
                                         *_addresses(headers.get("to", "")), returned.sender)}
    dsn = _dsn(msg, notice)
    failures = [f for f in dsn if address_key(f.address) not in excluded]
    structural = bool(failures)
    named = {address_key(f.address) for f in failures}
    delay = _is_delay(subject, notice)
    action = "delayed" if delay else "failed"
    diagnostic = _diagnostic(notice, subject)
    strong = [a for a in (*_addresses(headers.get("x-failed-recipients", "")), *_flufl(msg))
              if address_key(a) not in excluded]
    weak = [a for a in _named_in(notice) if not _is_daemon(a)][:MAX_NAMED]
    if _SUCCESS_SUBJECT.search(subject) and not failures:
        strong = weak = []  # a report that the mail arrived names no failure
    for group in (strong, weak if not (failures or strong) else []):
        for address in group:
            key = address_key(address)
            if key in named or key in excluded:
                continue
            named.add(key)
            failures.append(Failure(address, action, _status(diagnostic), diagnostic))
            structural = structural or group is strong or _failing(notice, address)
    dsn_part = any(p.get_content_type() == "message/delivery-status" for p in msg.walk())
    from_system = system or headers.get("return-path", "").strip() == "<>"
    return Report(tuple(failures), returned, structural or dsn_part, from_system, delay)


# --- the returned original -------------------------------------------------------


def _returned(msg: Message) -> tuple[Returned, str]:
    """The returned original's headers, and the notification's own text
    (everything before the original)."""
    ids: list[str] = []
    to: list[str] = []
    sender = ""
    notice: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ORIGINAL_TYPES:
            inner = _inner_headers(part)
            if inner is not None:
                ids += _message_ids(inner.get("message-id", ""))
                to += _addresses(inner.get("to", ""))
                sender = sender or next(iter(_addresses(inner.get("from", ""))), "")
        elif part.get_content_maintype() == "text" and len(notice) < 8:
            text = text_of(part)
            head, inline = _split_inline(text)
            notice.append(head)
            if inline is not None:
                ids += _message_ids(inline.get("message-id", ""))
                to += _addresses(inline.get("to", ""))
                sender = sender or next(iter(_addresses(inline.get("from", ""))), "")
    returned = Returned(tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(to)), sender)
    return returned, "\n".join(notice)[:TEXT_LIMIT]


def _inner_headers(part: Message) -> dict[str, str] | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        inner = payload[0] if payload and isinstance(payload[0], Message) else None
        return None if inner is None else raw_headers(inner)
    if isinstance(payload, str):  # text/rfc822-headers, or a message part left as text
        return _parse_headers(text_of(part) if part.get("content-transfer-encoding") else payload)
    return None


def _parse_headers(text: str) -> dict[str, str]:
    return raw_headers(HeaderParser(policy=compat32).parsestr(text[:TEXT_LIMIT]))


def _split_inline(text: str) -> tuple[str, dict[str, str] | None]:
    """A text part's notification, and the header block of an original pasted
    into it (the block of header lines that holds a Message-ID)."""
    lines = text.splitlines()
    found = next((i for i, line in enumerate(lines)
                  if line.lstrip(" \t>")[:11].lower() == "message-id:"), None)
    if found is None:  # no Message-ID: the first header block after a separator line
        after = next((i + 1 for i, line in enumerate(lines)
                      if len(line) < 120 and _SEPARATOR.search(line)), len(lines))
        found = next((i for i in range(after, min(after + 5, len(lines)))
                      if _HEADER_LINE.fullmatch(lines[i])), None)
    if found is None:
        return text, None
    start = found
    while start > 0 and _is_header_line(lines[start - 1]):
        start -= 1
    end = found + 1
    while end < len(lines) and lines[end].strip():
        end += 1
    block = "\n".join(x.lstrip(" \t>") if _HEADER_LINE.fullmatch(x) else x
                      for x in lines[start:end])
    return "\n".join(lines[:start]), _parse_headers(block + "\n\n")


def _is_header_line(line: str) -> bool:
    """A header line, or a folded continuation of one."""
    return bool(_HEADER_LINE.fullmatch(line)) or (line[:1] in (" ", "\t") and bool(line.strip()))


# --- delivery-status fields ------------------------------------------------------


def _dsn(msg: Message, notice: str) -> list[Failure]:
    """Per-recipient fields of every delivery-status part; else the same
    fields written into the text (some servers do)."""
    found: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if isinstance(payload, str):
            blocks = [HeaderParser(policy=compat32).parsestr(b + "\n\n")
                      for b in re.split(r"\n[ \t]*\n", text_of(part))]
        for block in blocks:
            if isinstance(block, Message):
                found += _recipient(raw_headers(block))
    if not found and "recipient" in notice.lower():
        found = _inline_dsn(notice)
    return found


def _inline_dsn(text: str) -> list[Failure]:
    blocks: list[dict[str, str]] = []
    for name, value in _DSN_FIELD.findall(text):
        name = name.lower()
        if name in ("final-recipient", "original-recipient") and (
                not blocks or ("final-recipient" in blocks[-1] and name == "final-recipient")):
            blocks.append({})
        if blocks:
            blocks[-1].setdefault(name, value)
    return [f for b in blocks for f in _recipient(b)]


def _recipient(fields: dict[str, str]) -> list[Failure]:
    address = ""
    for name in ("final-recipient", "x-actual-recipient", "original-recipient"):
        value = fields.get(name, "")
        kind, _, rest = value.partition(";")
        candidate = (rest if rest else kind).strip().strip("<>").strip()
        typed = kind.strip().lower() in ("rfc822", "utf-8") or not rest
        if typed and _ADDRESS.fullmatch(candidate):
            address = candidate
            break
    if not address:
        return []
    action = fields.get("action", "").strip().lower().split(" ")[0]
    status = _status(fields.get("status", ""))
    code = fields.get("diagnostic-code", "")
    diagnostic = clean(code.partition(";")[2] or code) if code else ""
    if not action:
        action = "failed" if status.startswith("5") else "delayed" if status[:1] == "4" else ""
    note = clean(" ".join(x for x in (status, diagnostic) if x))[:NOTE_LIMIT]
    return [Failure(address, action or "failed", status, note)]


# --- the text ----------------------------------------------------------------------


def _flufl(msg: Message) -> list[str]:
    """flufl.bounce's permanent failures (its temporary ones are read from the
    text's own words instead: its detectors disagree with the DSN too often)."""
    try:
        _temporary, permanent = all_failures(msg)
    except Exception:
        return []
    found = [clean(a.decode("ascii", "replace")) for a in permanent]
    return sorted(a for a in found if _ADDRESS.fullmatch(a))


def _named_in(text: str) -> list[str]:
    """Addresses in the notification's text, in order (linear: split first)."""
    found = [t.strip(".:") for t in _SPLIT.split(text) if "@" in t]
    return list(dict.fromkeys(a for a in found if _ADDRESS.fullmatch(a)))


def _failing(text: str, address: str) -> bool:
    """Whether the lines around an address's first mention speak of a failure
    (a server's format names the failed address next to its reason)."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if address in line), None)
    if at is None:
        return False
    around = "\n".join(lines[max(0, at - 3):at + 4])
    return bool(_PERMANENT_TEXT.search(around) or _REASON.search(around))


def _is_delay(subject: str, notice: str) -> bool:
    return bool(_DELAY_TEXT.search(notice) or _DELAY_SUBJECT.search(subject)) and not (
        re.search(r"permanent|given up|giving up|fatal", notice, re.IGNORECASE))


def _diagnostic(notice: str, subject: str) -> str:
    """The server's words: the line with the first SMTP reply (and the line
    before, when that one is only a code), else the first line giving a
    reason, else the subject."""
    match = _SMTP_REPLY.search(notice) or _REASON.search(notice)
    if match is None:
        return clean(subject)[:NOTE_LIMIT]
    start = notice.rfind("\n", 0, match.start()) + 1
    end = notice.find("\n", match.end())
    line = notice[start:end if end >= 0 else len(notice)].strip()
    if len(line) < 40:
        before = notice[:start].rstrip().rpartition("\n")[2].strip()
        line = f"{before} {line}" if before else line
    return clean(line)[:NOTE_LIMIT]


def _status(text: str) -> str:
    match = _STATUS.search(text)
    return match.group(0) if match else ""


def _is_daemon(address: str) -> bool:
    return address.partition("@")[0].lower().startswith(DAEMONS)


# --- shared helpers ------------------------------------------------------------------


def raw_headers(msg: Message) -> dict[str, str]:
    """The first value of each header, as it was written (not decoded), by lower-case name."""
    out: dict[str, str] = {}
    for name, value in msg.raw_items():
        out.setdefault(name.lower(), str(value)[:16 * 1024])
    return out


def _addresses(value: str) -> list[str]:
    """Addresses of a raw address header; encoded words are never decoded
    first, so a display name cannot pose as an address."""
    try:
        pairs = getaddresses([value])
    except (ValueError, IndexError, TypeError):
        return []
    return [a for _, a in pairs if _ADDRESS.fullmatch(a)]


def _message_ids(text: str) -> list[str]:
    return re.findall(r"<[^<>\s]{1,250}>", text)


def text_of(part: Message) -> str:
    """A text part's decoded text, cut to TEXT_LIMIT characters."""
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = str(part.get_content_charset() or "utf-8")
    try:
        return payload[:TEXT_LIMIT].decode(charset, "replace")
    except (LookupError, ValueError):  # an unknown charset name
        return payload[:TEXT_LIMIT].decode("utf-8", "replace")
