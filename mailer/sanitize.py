"""The one text cleaner for data from strangers (contact fields, OCR text).

Contact data ends up in headers and greetings, so it must never smuggle in a
header break, a bidi trick or an RFC 2047 encoded word: control and format
characters (Unicode Cc, Cf, Zl, Zp) and the encoded-word marker "=?" go,
whitespace is collapsed and trimmed.  The contacts stage applies it to every
field; the message stage applies it again, since a Contact can be built by
anyone.
"""

from __future__ import annotations

import unicodedata

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def clean(text: str) -> str:
    """One safe line of text."""
    if text.isprintable() and "=?" not in text:  # fast path: nothing to strip
        return " ".join(text.split())
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _UNSAFE_CATEGORIES
    )
    while "=?" in text:  # removing one marker can join "=" and "?" into a new one
        text = text.replace("=?", "")
    return " ".join(text.split())
