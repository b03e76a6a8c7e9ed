"""Property tests: whatever the bytes, import raises nothing but InputError, and every
entry read is accounted for (accepted + merged duplicates + rejected), also when a cell
holds several addresses."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.addresses import InvalidAddress, normalize_address
from mailer.contacts import iter_contacts, load_contacts
from mailer.errors import InputError
from mailer.models import Contact, ImportResult, Rejected

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"
VCARDS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.vcf"))]
# MAILER_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the suite quick.
FUZZ = settings(
    max_examples=int(os.environ.get("MAILER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@contextmanager
def file_with(data: bytes, name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def import_or_input_error(path: Path) -> ImportResult | None:
    """The import result, or None when the file was refused as a whole."""
    try:
        streamed = list(iter_contacts([path]))
        result = load_contacts([path])
    except InputError as err:
        assert str(path) in str(err)  # the message names the file
        return None
    assert result.read == len(streamed)  # merging loses no entry
    assert len(result.contacts) + len(result.duplicates) + len(result.rejected) == len(streamed)
    assert all(item.source.startswith(f"{path}:") for item in streamed)
    return result


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".vcf", ".csv", ".txt", ""]))
def test_random_bytes(data: bytes, suffix: str) -> None:
    with file_with(data, f"random{suffix}") as path:
        import_or_input_error(path)


cell = st.text(st.characters(codec="cp1252"), max_size=12)  # encodable in every codec below
address = st.emails().filter(lambda a: a.isascii())


@FUZZ
@given(
    rows=st.lists(st.tuples(cell, st.one_of(address, cell), cell), min_size=1, max_size=15),
    delimiter=st.sampled_from([",", ";", "\t"]),
    codec=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
)
def test_random_csv_rows_are_each_accounted_for_at_their_line(
    rows: list[tuple[str, str, str]], delimiter: str, codec: str
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Name", "E-Mail", "Firma"])
    starts: list[int] = []
    for row in rows:
        if not any(c.strip() for c in row):
            continue  # blank records are not entries
        starts.append(buffer.getvalue().count("\n") + 1)
        writer.writerow(row)
    data = buffer.getvalue().encode(codec)
    with file_with(data, "random.csv") as path:
        if not starts:  # a header and blank lines: refused as a whole, naming the file
            with pytest.raises(InputError, match=f"no contacts in {re.escape(str(path))}"):
                list(iter_contacts([path]))
            return
        items = list(iter_contacts([path]))
    assert [item.source for item in items] == [f"{path}:{line}" for line in starts]


def mutate(card: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for position, length, insert in edits:
        at = position % (len(card) + 1)
        card = card[:at] + insert + card[at + length :]
    return card


@FUZZ
@given(
    card=st.sampled_from(VCARDS),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5000),
            st.integers(min_value=0, max_value=40),
            st.sampled_from([b"", b"\r", b"\n", b" ", b"=", b":", b";", b"\\", b"\xff\xfe",
                             b"BEGIN:VCARD\n", b"END:VCARD\n", b"\x00", b"=C3", b"\xc3"]),
        ),
        max_size=6,
    ),
)  # fmt: skip
def test_mutated_vcards(card: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    with file_with(mutate(card, edits), "mutated.vcf") as path:
        import_or_input_error(path)


not_an_address = st.text(st.characters(categories=["L", "Nd"]), min_size=1, max_size=10)
SEPARATORS = ["; ", ";", ", ", ",", "\n", "\r\n", " ::: "]


def _valid(value: str) -> str | None:
    try:
        return normalize_address(value)
    except InvalidAddress:
        return None


@FUZZ
@given(
    cells=st.lists(
        st.lists(st.one_of(address, not_an_address), min_size=1, max_size=4),
        min_size=1,
        max_size=10,
    ),
    separator=st.sampled_from(SEPARATORS),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_multi_address_cells(cells: list[list[str]], separator: str, delimiter: str) -> None:
    """Each row's cell holds several values: the first valid address is the primary one,
    every valid one is kept, an invalid extra flags the contact, a row without any valid
    address is rejected; nothing but InputError, and the counts add up."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Name", "Emails"])
    for number, values in enumerate(cells):
        writer.writerow([f"Person {number}", separator.join(values)])
    flags: list[Rejected] = []
    with file_with(buffer.getvalue().encode("utf-8"), "multi.csv") as path:
        result = import_or_input_error(path)
        assert result is not None  # every row has a value: never refused as a whole
        items = list(iter_contacts([path], on_flag=flags.append))
    flagged = {flag.source for flag in flags}
    assert len(items) == len(cells)
    for item, values in zip(items, cells, strict=True):
        checked = [_valid(v) for v in values]
        valid = list(dict.fromkeys(v.casefold() for v in checked if v))  # first one of each
        if not valid:
            assert isinstance(item, Rejected)
            continue
        assert isinstance(item, Contact)
        assert item.email == next(v for v in checked if v)
        assert [e.casefold() for e in item.emails] == valid
        assert (item.source in flagged) == (None in checked)
