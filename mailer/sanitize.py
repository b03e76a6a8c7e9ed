"""The one cleaner for text from outside: contact fields, file names, the profile, OCR text.

Such text ends up in headers, greetings, terminals and files, so it must never
smuggle in a header break, a terminal escape, a bidi trick or an RFC 2047
encoded word.  The unsafe characters are Unicode's control and format
characters, line and paragraph separators and lone surrogates (categories Cc,
Cf, Zl, Zp, Cs); the unsafe sequence is the encoded-word marker "=?".  Three
uses, one definition:

- `clean`: a free-text field (name, organisation): unsafe characters and "=?"
  go, whitespace is collapsed and trimmed.  The contacts stage applies it to
  every field; the message stage again, since a Contact can be built by anyone.
- `problem`: a value that must be used as it is or not at all (an address, a
  profile setting, a URL): it says what is wrong instead of changing the value.
- `shown`: text printed to a terminal or written into a report (file names,
  server replies, error messages): each unsafe character becomes a visible
  escape such as \\x1b, so nothing reaches the terminal raw and the user can
  still tell which file was meant.
"""

from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
ENCODED_WORD = "=?"


def is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in UNSAFE_CATEGORIES


def clean(text: str) -> str:
    """One safe line of text."""
    if text.isprintable() and ENCODED_WORD not in text:  # fast path: nothing to strip
        return " ".join(text.split())
    text = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or not is_unsafe(ch))
    while ENCODED_WORD in text:  # removing one marker can join "=" and "?" into a new one
        text = text.replace(ENCODED_WORD, "")
    return " ".join(text.split())


def problem(text: str, *, encoded_word_ok: bool = False) -> str:
    """ "" when `text` is safe to use unchanged, else what is wrong with it."""
    if not text.isprintable():
        bad = next((ch for ch in text if is_unsafe(ch)), None)
        if bad is not None:
            return f"contains the control or format character {_escape(bad)}"
    if not encoded_word_ok and ENCODED_WORD in text:
        return 'contains "=?", which mail programs may decode as an encoded word'
    return ""


def shown(text: str) -> str:
    """`text` safe to print on one line: each unsafe character as a visible escape."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) if is_unsafe(ch) else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
