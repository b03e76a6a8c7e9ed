"""`Composer`: the templates and the profile -> one `Draft` per contact.

The message bytes are assembled here rather than with `EmailMessage`, which
costs ~1.5 ms a message (mostly re-parsing its own headers): the parts that
are the same for everyone (From, the MIME skeleton, the vCard attachment) are
built once per Composer and language, and each message only encodes its
To, Subject, Message-ID and the two bodies.  The result is
multipart/mixed[multipart/alternative[text/plain, text/html], text/vcard],
every part quoted-printable, so no line exceeds 76 octets and no part can
contain a boundary: the boundaries start with "=_", which quoted-printable
never produces.

The templates are rendered the same way: what of a template names neither
`contact` nor `subject` (the channel list, the footer, the HTML head) is the
same for everyone of a language and is rendered once (`_Split`); per message
only the rest runs, and the text is the same as a whole rendering's.

Contact fields are data from strangers' cards: `sanitize` removes control and
format characters and encoded-word markers before they are used, addresses go
through `email.headerregistry.Address`, header text is RFC 2047 encoded by
`email.header`, and Jinja2 runs sandboxed, so a field is never a header line
and never template code.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import hashlib
import importlib.resources
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from ..errors import ConfigError, TemplateError
from ..language import Decision, decide
from ..models import Contact, Draft
from ..sanitize import clean as sanitize
from .profile import Profile
from .sender_vcard import sender_vcard

TEMPLATE_FILES = ("subject.txt.j2", "body.txt.j2", "body.html.j2")
CRLF = b"\r\n"
MAX_LINE = 998  # octets per line, RFC 5322 2.1.1
# A rendered subject or body: the mail is a few hundred words; a template (or a value it
# repeats) that produces more is broken or hostile, and must not fill the disk or memory.
MAX_RENDERED = 256 * 1024


# Unicode character names of the scripts that write a name family name first and
# without a space: Chinese, Japanese (kanji, kana, 々) and Korean (hangul)
_FAMILY_FIRST = ("CJK ", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "HANGUL")


def greeting_name(name: str, given: str, family: str) -> str:
    """The name as the salutation says it.  A Chinese, Japanese or Korean name that the
    source composed in Western order ("太郎 田中") is said family name first, as its
    script writes it (田中太郎); any other name as it is."""
    if given and family and name == f"{given} {family}" and all(
        unicodedata.name(ch, "").startswith(_FAMILY_FIRST) for ch in given + family
    ):
        return family + given
    return name


def default_templates() -> Path:
    """The templates shipped in the wheel (mailer/_data/templates), else the checkout's."""
    packaged = importlib.resources.files("mailer") / "_data" / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


def template_languages(folder: Path) -> tuple[str, ...]:
    """The languages a templates folder has: its sub-folders holding a subject template."""
    if not folder.is_dir():
        return ()
    return tuple(sorted(d.name for d in folder.iterdir() if (d / TEMPLATE_FILES[0]).is_file()))


class Composer:
    """Renders the one message for every contact; build it once per run."""

    def __init__(
        self,
        profile: Profile,
        *,
        templates: Path | None = None,
        lang: str | None = None,
        message_id: Callable[[], str] | None = None,  # tests pin it; default: random
    ) -> None:
        self.profile = profile
        self.folder = templates if templates is not None else default_templates()
        if not self.folder.is_dir():
            raise ConfigError(f"The templates folder {self.folder} does not exist.")
        self.languages = template_languages(self.folder)
        if not self.languages:
            raise TemplateError(
                f"{self.folder} holds no templates: expected one folder per language, e.g. "
                f"en/ with {', '.join(TEMPLATE_FILES)}."
            )
        # the fallback language must exist: --lang when given, else the profile's
        wanted, what = (
            (lang, "--lang") if lang is not None else (profile.lang, "The profile's lang")
        )
        if wanted not in self.languages:
            where = "the shipped templates have" if templates is None else f"{self.folder} has"
            raise ConfigError(
                f"{what} is {wanted!r}, but {where} templates only for "
                f"{', '.join(self.languages)}: choose one of those, or add a {wanted}/ folder "
                f"to your own templates (--templates DIR; README: 'Your own templates')."
            )
        self.lang = lang
        self._message_id = message_id or self._random_message_id
        env = _Sandbox(
            loader=FileSystemLoader(self.folder),
            undefined=StrictUndefined,
            autoescape=lambda name: name is not None and name.endswith(".html.j2"),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._context = {code: self._sender_context(code) for code in self.languages}
        # Compile everything now, so a broken template stops the run before the first message.
        self._templates = {
            code: tuple(_Split(env, f"{code}/{name}", self._context[code])
                        for name in TEMPLATE_FILES)
            for code in self.languages
        }
        # per language: the attached vCard's link labels are in the mail's language
        self._static = {code: _StaticParts(profile, code) for code in self.languages}

    def render(self, contact: Contact) -> Draft:
        lang, why = self.language(contact)
        subject_t, text_t, html_t = self._templates[lang]
        static = self._static[lang]
        fields = {
            key: sanitize(getattr(contact, key))
            for key in ("given", "family", "org", "title", "display")
        }
        # the salutation's name is a person's only ("Hello," for a company), as the import
        # decided; a contact made elsewhere has only its name, or given and family
        composed = f"{fields['given']} {fields['family']}".strip()
        if fields["display"]:
            fields["name"] = sanitize(contact.person)
        else:
            fields["name"] = sanitize(contact.name) or composed
            fields["display"] = fields["name"]
        fields["name"] = greeting_name(fields["name"], fields["given"], fields["family"])
        recipient, smtputf8 = _envelope(contact.email)
        context = {**self._context[lang], "contact": {**fields, "email": recipient}}
        subject = sanitize(subject_t.render(context))
        context["subject"] = subject
        text = text_t.render(context)
        html = html_t.render(context)
        to = _mailbox(fields["display"], recipient)
        message_id = self._message_id()
        headers = b"".join(
            (
                b"To: " + to.encode("utf-8") + CRLF,
                b"Subject: " + _header_text(subject).encode("ascii") + CRLF,
                b"Message-ID: " + message_id.encode("ascii") + CRLF,
            )
        )
        _check_lines(headers, contact.email)
        payload = b"".join(
            (
                static.sender,
                headers,
                static.head,
                _qp(text),
                static.between,
                _qp(html),
                static.tail,
            )
        )
        return Draft(
            recipient=recipient,
            sender=self.profile.email,
            message_id=message_id,
            lang=lang,
            subject=subject,
            text=text,
            html=html,
            payload=payload,
            smtputf8=smtputf8,
            lang_why=why,
        )

    def language(self, contact: Contact) -> Decision:
        """--lang for everyone, else `language.decide` among the template languages."""
        if self.lang is not None:
            return Decision(self.lang, "--lang")
        return decide(contact, self.profile.lang, self.languages)

    def _sender_context(self, lang: str) -> dict[str, Any]:
        p = self.profile
        return {
            "lang": lang,
            "sender": {
                "name": p.name,
                "email": p.email,
                "org": p.org,
                "title": p.title,
                "phones": list(p.phones),
                "event": p.event,
                "event_phrase": p.event_phrase(lang),  # "" unless the profile words it
            },
            "channels": [
                {"label": c.label_for(lang), "url": c.url, "text": c.text, "network": c.network}
                for c in p.channels
            ],
            "unsubscribe": _unsubscribe_mailto(p.email),
        }

    def _random_message_id(self) -> str:
        # The profile's domain, never the local host name (a per-message lookup, and it leaks).
        return f"<{secrets.token_hex(16)}@{self.profile.domain}>"


class _StaticParts:
    """The bytes every message shares, built once."""

    def __init__(self, profile: Profile, lang: str) -> None:
        token = hashlib.sha256(profile.email.encode()).hexdigest()[:16]
        mixed, alternative = f"=_mixed_{token}", f"=_alt_{token}"
        headers = []
        # A personal one-off mail carries no list headers: List-Id and List-Unsubscribe get it
        # sorted as list mail (Gmail's tabs, Thunderbird's list tools) and offer to unsubscribe
        # from a list that does not exist.  Only an RFC 8058 one-click URL needs them; then
        # List-Id comes along, since List-Unsubscribe alone is what SpamAssassin's
        # LIST_PARTIAL rules call incomplete list headers.
        if profile.unsubscribe_url:
            domain = profile.domain
            label = re.sub(r"[^A-Za-z0-9-]", "-", profile.email.partition("@")[0]) or "contacts"
            headers += [
                f"List-Id: <{label}.contacts.{domain}>",
                f"List-Unsubscribe: <{_unsubscribe_mailto(profile.email)}>, "
                f"<{profile.unsubscribe_url}>",
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            ]
        headers += [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{mixed}"',
            "",
            f"--{mixed}",
            f'Content-Type: multipart/alternative; boundary="{alternative}"',
            "",
            f"--{alternative}",
            *_part_headers('text/plain; charset="utf-8"'),
        ]
        self.sender = b"From: " + _mailbox(profile.name, profile.email).encode("ascii") + CRLF
        self.head = "\r\n".join(headers).encode("ascii") + CRLF
        _check_lines(self.sender + self.head, profile.email)
        self.between = (
            "\r\n".join(
                ["", f"--{alternative}", *_part_headers('text/html; charset="utf-8"')]
            ).encode("ascii")
            + CRLF
        )
        filename = vcard_filename(profile.name)
        vcard_headers = _part_headers(
            f'text/vcard; charset="utf-8"; name="{filename}"',
            f'attachment; filename="{filename}"',
        )
        self.tail = b"".join(
            (
                "\r\n".join(["", f"--{alternative}--", "", f"--{mixed}", *vcard_headers]).encode(
                    "ascii"
                ),
                CRLF,
                _qp(sender_vcard(profile, "3.0", lang)),
                f"\r\n--{mixed}--\r\n".encode("ascii"),
            )
        )


def vcard_filename(name: str) -> str:
    """An ASCII file name for the card: a non-ASCII (RFC 2231) name is one more
    place where header injection has been possible."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "_", ascii_name).strip("_")[:60]
    return f"{stem or 'contact'}.vcf"


def _part_headers(content_type: str, disposition: str = "") -> list[str]:
    lines = [f"Content-Type: {content_type}", "Content-Transfer-Encoding: quoted-printable"]
    if disposition:
        lines.append(f"Content-Disposition: {disposition}")
    return [*lines, ""]


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends: lines <= 76 octets, 7-bit clean."""
    crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return binascii.b2a_qp(crlf.encode("utf-8"), istext=True)


@functools.lru_cache(maxsize=64)  # a subject is mostly the same for everyone
def _header_text(text: str) -> str:
    """Unstructured header text, RFC 2047 encoded when not ASCII, folded below 78 columns."""
    if text.isascii():
        folded = Header(text, "us-ascii", header_name="Subject").encode(linesep="\r\n")
        if max(map(len, folded.split("\r\n"))) <= MAX_LINE - len("Subject: "):
            return folded
    # ASCII is folded only at spaces; encoded words can be split anywhere
    return Header(text, "utf-8", header_name="Subject").encode(linesep="\r\n")


_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"  # RFC 5322 3.2.3
DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")


def _mailbox(name: str, addr_spec: str) -> str:
    """`Name <addr>` for From/To, from a checked `Address`; the name quoted or RFC 2047 encoded."""
    local, _, domain = addr_spec.rpartition("@")
    try:
        if DOT_ATOM.fullmatch(local) and DOT_ATOM.fullmatch(domain):
            # what parsing it would find, without the parse: the same Address
            address = Address(display_name=name, username=local, domain=domain)
        elif local.isascii():
            address = Address(display_name=name, addr_spec=addr_spec)
        elif sanitize(local) == local and " " not in local and domain:
            # RFC 6532 local part (sent with SMTPUTF8): the stdlib parser refuses it
            address = Address(display_name=name, username=local, domain=domain)
        else:
            raise ValueError("not a single address")
    except (HeaderParseError, ValueError, IndexError) as err:
        raise TemplateError(f"{addr_spec!r} is not an address a header can carry: {err}") from None
    if not address.display_name:
        return address.addr_spec
    if address.display_name.isascii():
        # str() quotes the name where needed and, unlike formataddr, keeps an RFC 6532
        # local part; quoting can double the length, so it is measured afterwards
        mailbox = str(address)
        if len("From: ") + len(mailbox.encode("utf-8")) <= MAX_LINE:
            return mailbox
    phrase = Header(address.display_name, "utf-8", header_name="From").encode(linesep="\r\n")
    return f"{phrase} <{address.addr_spec}>"


def _check_lines(headers: bytes, who: str) -> None:
    """No header line over 998 octets (RFC 5322 2.1.1), whatever the input: a longer
    line is cut or rejected somewhere on the way, and the mail arrives damaged."""
    longest = max(len(line) for line in headers.split(CRLF))
    if longest > MAX_LINE:
        raise TemplateError(
            f"the message to {who!r} would have a header line of {longest} octets "
            f"(at most {MAX_LINE}); shorten the name or subject."
        )


def _envelope(email: str) -> tuple[str, bool]:
    """(address to send to, needs SMTPUTF8): an international domain is written in
    its ASCII (IDNA) form, so only a non-ASCII local part needs SMTPUTF8."""
    local, _, domain = email.strip().rpartition("@")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise TemplateError(f"{email!r} has a domain that cannot be encoded.") from None
    return f"{local}@{domain}", not local.isascii()


def _unsubscribe_mailto(email: str) -> str:
    return f"mailto:{email}?subject=unsubscribe"


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, plus: no `*` or `**` whose result is too big to be part of a
    mail (`{{ 'a' * 10**9 }}` would take a gigabyte before any size check could run)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_RENDERED:
                    raise SecurityError(f"{len(seq)} * {times} is larger than a mail can be")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            bits = left.bit_length() * right
            if bits > MAX_RENDERED * 8:
                raise SecurityError(f"{left} ** {right} is too large a number")
        return super().call_binop(context, operator, left, right)


# The names whose value differs from one recipient to the next; every other name
# a template may use is the sender's (`_sender_context`), bound inside it, or a global.
RECIPIENT_NAMES = frozenset({"contact", "subject"})
# What a template cut at its top level may hold: output, conditions, loops and
# expressions.  Assignments, macros, blocks, imports and context references
# carry state from one part to the next: such a template is rendered whole.
_PLAIN = (nodes.Template, nodes.Output, nodes.If, nodes.For, nodes.Expr, nodes.Helper)
_STATEFUL = (nodes.ContextReference, nodes.DerivedContextReference, nodes.InternalName,
             nodes.ExtensionAttribute, nodes.ImportedName, nodes.EnvironmentAttribute)
_IMPURE_FILTERS = frozenset({"random"})


class _Split:
    """A template whose top-level parts that do not depend on the recipient are
    rendered once (at the first message, so an error shows where it always did)
    and the others per message; one that cannot be cut safely is rendered whole."""

    def __init__(self, env: SandboxedEnvironment, name: str, sender: dict[str, Any]) -> None:
        self._env, self._name, self._sender = env, name, sender
        tree, self.filename = _parse(env, name)
        self._parts = _cut(env, tree, name, self.filename, frozenset(sender))
        if not self._parts:
            self._parts = [(False, self.template)]
        self._pieces: tuple[str | Template, ...] | None = None

    @functools.cached_property
    def template(self) -> Template:
        """The template whole: for one that cannot be cut (and to compare with)."""
        return _load(self._env, self._name)

    def render(self, context: dict[str, Any]) -> str:
        if self._pieces is None:
            self._pieces = tuple(_render((t,), self._sender, self.filename) if same else t
                                 for same, t in self._parts)
        if len(self._pieces) == 1 and isinstance(self._pieces[0], str):
            return self._pieces[0]  # the same text for everyone, e.g. most subjects
        return _render(self._pieces, context, self.filename)


def _cut(env: SandboxedEnvironment, tree: nodes.Template, name: str, filename: str | None,
         sender: frozenset[str]) -> list[tuple[bool, Template]]:
    """The template's top-level nodes in runs of (the same for everyone?, compiled
    run); [] when it holds anything that carries state from one node to the next."""
    if not all(isinstance(n, _PLAIN) and not isinstance(n, _STATEFUL)
               for n in tree.find_all(nodes.Node)):
        return []
    top: list[nodes.Node] = []
    for node in tree.body:  # an output line's pieces one by one: the head of the HTML
        top += [nodes.Output([n], lineno=n.lineno) for n in node.nodes] \
            if isinstance(node, nodes.Output) else [node]
    runs: list[tuple[bool, list[nodes.Node]]] = []
    for node in top:
        same = _same_for_everyone(node, sender)
        if runs and runs[-1][0] == same:
            runs[-1][1].append(node)
        else:
            runs.append((same, [node]))
    return [(same, _compile(env, body, name, filename)) for same, body in runs]


def _same_for_everyone(node: nodes.Node, sender: frozenset[str]) -> bool:
    """Whether a node's output depends only on the sender's names and its own."""
    names = list(node.find_all(nodes.Name))
    bound = {n.name for n in names if n.ctx != "load"} | {"loop"}
    return not (
        any(n.name in RECIPIENT_NAMES for n in names)
        or any(n.name not in sender | bound for n in names if n.ctx == "load")
        or any(f.name in _IMPURE_FILTERS for f in node.find_all(nodes.Filter))
    )


def _compile(env: SandboxedEnvironment, body: list[nodes.Node], name: str,
             filename: str | None) -> Template:
    tree = nodes.Template(body, lineno=1)
    tree.set_environment(env)
    code = env.compile(tree, name, filename)
    # The globals as a plain dict, not Jinja's ChainMap over the environment's: every
    # render copies them into its context, and a ChainMap is copied key by key in Python
    # (a fifth of a message's rendering); nothing changes the environment's globals later.
    return env.template_class.from_code(env, code, dict(env.make_globals(None)))


def _load(env: SandboxedEnvironment, name: str) -> Template:
    with _template_errors(name):
        return env.get_template(name)


def _parse(env: SandboxedEnvironment, name: str) -> tuple[nodes.Template, str | None]:
    assert env.loader is not None
    with _template_errors(name):
        source, filename, _ = env.loader.get_source(env, name)
        return env.parse(source, name, filename), filename


@contextlib.contextmanager
def _template_errors(name: str) -> Iterator[None]:
    """A template that does not compile, or is missing, as a TemplateError naming it."""
    try:
        yield
    except TemplateSyntaxError as err:
        raise TemplateError(f"{err.filename or name}, line {err.lineno}: {err.message}") from None
    except JinjaTemplateError as err:  # TemplateNotFound: a language folder lacks a file
        raise TemplateError(f"Template {name} is missing: {err}") from None


def _render(parts: Sequence[str | Template], context: dict[str, Any],
            filename: str | None) -> str:
    """The text of a template's parts in order; rendered piece by piece, so that
    one which writes more than MAX_RENDERED characters stops there instead of
    filling the memory."""
    pieces: list[str] = []
    size = 0
    try:
        for part in parts:
            for piece in (part,) if isinstance(part, str) else part.generate(context):
                size += len(piece)
                if size > MAX_RENDERED:
                    raise SecurityError(
                        f"the rendered text is larger than {MAX_RENDERED // 1024} KB; a short "
                        f"mail needs far less"
                    )
                pieces.append(piece)
        return "".join(pieces)
    except Exception as err:  # anything a user's template raises becomes a named, located error
        line = None
        tb = err.__traceback__
        while tb is not None:  # Jinja rewrites the traceback to point into the template file
            if tb.tb_frame.f_code.co_filename == filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f"{filename}, line {line}" if line else str(filename)
        raise TemplateError(f"{where}: {err}") from None
