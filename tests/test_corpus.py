"""Conformance: every file of the shared real-world corpus imports as its MANIFEST.json says.

The corpus lives next to the project (../shared/corpus) and is not copied into it.
Manifest conventions applied here:
- entries are compared in file order (card N / row N);
- names are compared after mailer's sanitising (whitespace collapsed), and where
  the manifest has no formatted name the importer may leave it empty or compose
  it from given and family name;
- "emails" lists every value; the invalid ones must be dropped (and reported by
  `split_addresses`), the rest imported, domain lower-cased;
- severity "reject" entries are Rejected at the same position, "flag" entries are
  contacts kept whose invalid values were dropped, reported through `on_flag`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mailer.contacts import iter_contacts, load_contacts
from mailer.contacts.csvfile import read_csv
from mailer.contacts.normalize import Entry, split_addresses
from mailer.contacts.vcard import read_vcards
from mailer.models import Contact, Rejected

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MANIFEST = CORPUS / "MANIFEST.json"


def _files() -> list[dict[str, Any]]:
    if not MANIFEST.is_file():
        return []
    return json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]


pytestmark = pytest.mark.skipif(
    not MANIFEST.is_file(), reason=f"shared contacts corpus not found at {CORPUS}"
)


# Issue 23 item 2: the corpus was labelled when any top-level domain passed; mailer now
# refuses addresses under a top-level domain that does not exist, with the reason.
NOT_A_TLD = frozenset({"test@domain.tld", "next@domain.tld", "oezdemir@ueglue.tu"})
NOT_A_TLD_WHY = "' is not a top-level domain that mail is delivered to"


def _refused_now(expected: dict[str, Any]) -> list[str]:
    return [e for e in expected["emails"] if e in NOT_A_TLD]


def _text(value: str | None) -> str:
    return " ".join((value or "").split())


def _address(value: str) -> str:
    local, _, domain = value.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def _accepted_values(expected: dict[str, Any], key: str) -> set[str]:
    values = {_text(expected[key])}
    values.update(_text(v) for v in expected.get("alternatives", {}).get(key, []))
    return values


def _entries(path: Path) -> list[Entry]:
    if path.suffix == ".vcf":
        return list(read_vcards(path, str(path)))
    return list(read_csv(path, str(path), {}))


def _check_contact(item: Contact, expected: dict[str, Any]) -> None:
    given, family = _text(expected["given"]), _text(expected["family"])
    if expected["formatted_name"] is None:
        assert item.name in {"", " ".join(p for p in (given, family) if p)}
    else:
        assert item.name in _accepted_values(expected, "formatted_name")
    assert item.given in (_accepted_values(expected, "given") if given else {""})
    assert item.family in (_accepted_values(expected, "family") if family else {""})
    assert item.org == _text(expected["org"])
    invalid = expected.get("invalid_emails", []) + _refused_now(expected)
    wanted = [_address(e) for e in expected["emails"] if e not in invalid]
    assert sorted(item.emails) == sorted(dict.fromkeys(wanted))
    assert item.email in wanted


@pytest.mark.parametrize("spec", _files(), ids=lambda spec: spec["file"])
def test_file_imports_as_the_manifest_says(spec: dict[str, Any]) -> None:
    path = CORPUS / spec["file"]
    items = list(iter_contacts([path]))
    assert len(items) == spec["expected_contact_count"]
    rejected_at = {r["where"]: r for r in spec["rejected"] if r["severity"] == "reject"}
    for item, expected in zip(items, spec["contacts"], strict=True):
        if row := re.fullmatch(r"row \d+ \(line (\d+)\)", expected["where"]):
            assert item.source == f"{path}:{row.group(1)}"
        if expected["importable"] and set(expected["emails"]) <= NOT_A_TLD:
            assert isinstance(item, Rejected) and NOT_A_TLD_WHY in item.reason, item
        elif expected["importable"]:
            assert isinstance(item, Contact), f"{expected['where']}: {item}"
            _check_contact(item, expected)
        else:
            assert isinstance(item, Rejected), f"{expected['where']}: {item}"
            assert expected["where"] in rejected_at
            assert item.reason == rejected_at[expected["where"]]["why"]


@pytest.mark.parametrize("spec", _files(), ids=lambda spec: spec["file"])
def test_invalid_values_are_dropped_and_flagged(spec: dict[str, Any]) -> None:
    path = CORPUS / spec["file"]
    flags: list[Rejected] = []
    items = list(iter_contacts([path], on_flag=flags.append))
    pairs = zip(items, spec["contacts"], strict=True)
    where = {item.source: expected["where"] for item, expected in pairs}
    flagged = [(r["where"], r["why"]) for r in spec["rejected"] if r["severity"] == "flag"]
    assert [(where[f.source], f.reason) for f in flags] == flagged
    for entry, expected in zip(_entries(path), spec["contacts"], strict=True):
        _valid, invalid = split_addresses(entry.emails)
        refused = [value for value, _why in invalid]
        assert [v for v in refused if v not in NOT_A_TLD] == expected.get("invalid_emails", [])
        assert [v for v in refused if v in NOT_A_TLD] == _refused_now(expected)


@pytest.mark.parametrize("spec", _files(), ids=lambda spec: spec["file"])
def test_no_duplicates_and_counts_add_up(spec: dict[str, Any]) -> None:
    result = load_contacts([CORPUS / spec["file"]])
    assert [d.to_json() for d in result.duplicates] == spec["duplicates"]
    assert result.read == spec["expected_contact_count"]
