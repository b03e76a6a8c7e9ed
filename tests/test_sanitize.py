"""The one cleaner (mailer/sanitize.py), over every control, format, separator and
surrogate code point Unicode has, alone and inside text, through each of its uses:
`clean` (free text), `problem` (refuse, never change), `shown` (terminal)."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.addresses import InvalidAddress, normalize_address
from mailer.sanitize import UNSAFE_CATEGORIES, clean, problem, shown

UNSAFE = [
    chr(c) for c in range(sys.maxunicode + 1)
    if unicodedata.category(chr(c)) in UNSAFE_CATEGORIES
]  # fmt: skip
text_around = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
unsafe_char = st.sampled_from(UNSAFE)


def test_every_unsafe_category_is_covered() -> None:
    assert {unicodedata.category(ch) for ch in UNSAFE} == {"Cc", "Cf", "Zl", "Zp", "Cs"}
    assert len(UNSAFE) > 2000  # Cs alone is 2048 code points


def test_each_unsafe_character_is_removed_refused_and_shown_escaped() -> None:
    for ch in UNSAFE:
        text = f"Ada{ch}Lovelace"
        cleaned = clean(text)
        assert cleaned in ("AdaLovelace", "Ada Lovelace"), hex(ord(ch))
        assert problem(text), hex(ord(ch))
        printed = shown(text)
        assert printed.isprintable() and printed.isascii(), hex(ord(ch))
        assert printed.startswith("Ada\\") and printed.endswith("Lovelace")


@settings(max_examples=300)
@given(before=text_around, ch=unsafe_char, after=text_around)
def test_nothing_unsafe_survives_anywhere_in_text(before: str, ch: str, after: str) -> None:
    text = before + ch + after
    for out in (clean(text), shown(text)):
        assert not any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in out)
    assert "=?" not in clean(text)
    assert clean(clean(text)) == clean(text)  # idempotent
    assert problem(text)
    with pytest.raises(InvalidAddress):  # an address is refused, never rewritten
        normalize_address(f"a{ch}b@example.com")


@settings(max_examples=300)
@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_clean_text_passes_unchanged(text: str) -> None:
    safe = clean(text)
    assert problem(safe) == ""
    assert shown(safe) == safe
    if not problem(text):  # text that needed no cleaning is printed as it is
        assert shown(text) == text


def test_removing_encoded_word_markers_cannot_build_a_new_one() -> None:
    assert "=?" not in clean("==??utf-8?q?x?=")
    assert problem("=?utf-8?q?x?=").startswith('contains "=?"')
    assert problem("=?", encoded_word_ok=True) == ""
