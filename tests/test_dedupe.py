"""Duplicate merging over a stream (contacts/dedupe.py): every entry once, in the
order read; the richest record wins, across files."""

from __future__ import annotations

from pathlib import Path

from mailer.contacts import iter_contacts
from mailer.contacts.dedupe import merged
from mailer.models import Contact, Duplicate, Rejected


def test_a_later_richer_record_fills_the_earlier_place(tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text("Name,Email\n,ada@example.com\nBen,ben@example.org\nX,nope\n",
                     encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text("Name,Email,Company\nAda Lovelace,ADA@example.com,Analytical Engines\n",
                      encoding="utf-8")
    out = list(merged(iter_contacts([first, second])))
    assert [type(item) for item in out] == [Contact, Contact, Rejected, Duplicate]
    ada = out[0]
    assert isinstance(ada, Contact)
    assert (ada.name, ada.org, ada.email, ada.source) == (
        "Ada Lovelace", "Analytical Engines", "ada@example.com", f"{first}:2")
    assert out[3] == Duplicate(f"{second}:2", f"{first}:2", "ADA@example.com")


def test_a_confirmed_record_wins_over_a_card_guess() -> None:
    guess = Contact(email="kim@example.org", name="K1m Lee", org="Guess Ltd", title="CEO",
                    needs_review=True, source="card.jpg#1")
    typed = Contact(email="kim@example.org", name="Kim Lee", source="c.csv:2")
    [kim, dup] = merged([guess, typed])
    assert isinstance(kim, Contact) and isinstance(dup, Duplicate)
    assert (kim.name, kim.needs_review, kim.source) == ("Kim Lee", False, "card.jpg#1")
    assert kim.org == "Guess Ltd"  # gaps are filled from the other record


def test_second_addresses_join_people() -> None:
    both = Contact(email="a@example.com", emails=("a@example.com", "b@example.com"), source="1")
    via_second = Contact(email="b@example.com", name="B", source="2")
    out = list(merged([both, via_second]))
    assert out[1] == Duplicate("2", "1", "b@example.com")
    assert isinstance(out[0], Contact) and out[0].name == "B"

