"""Every reader has a time bound on hostile input: a fuzz test with a per-input deadline
(tests/bounds.py interrupts the reader, so a regex that would backtrack for days fails
here in seconds), seeded with the inputs of the hostile-input reviews and mutated
around them with the bytes that broke readers before."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailer.contacts import iter_contacts
from mailer.errors import InputError
from tests.bounds import deadline

DEADLINE = 3.0  # seconds per input; the seeds below are read in milliseconds
FUZZ = settings(
    max_examples=int(os.environ.get("MAILER_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\n%s\r\nEMAIL:ok@example.com\r\nEND:VCARD\r\n"
SEEDS: list[tuple[str, bytes]] = [
    # issue 17 item 1: vobject's parseLine backtracking (40 pairs: days)
    (".vcf", CARD % (b"FN;X" + b"=a" * 40)),
    (".vcf", CARD % (b"FN;X" + b"=a" * 40 + b'"=a:v')),
    (".vcf", CARD % (b"FN" + b";X=a,b" * 30 + b'"=a:v')),
    (".vcf", CARD % (b"N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE" + b"=C3=A4" * 30)),  # lost colon
    # item 4: a property line far over the 64 KB cap, and a folded one
    (".vcf", CARD % (b"FN:" + b"a" * 300_000)),
    (".vcf", CARD % (b"TITLE:" + b"\r\n t" * 100_000)),
    # items 2, 6, 8: addresses and names
    (".csv", "Name,Email\nJoerg,jörg@example.com\n".encode()),
    (".csv", b"Name,Email\nFoo,foo=?bar@example.com\n"),
    (".csv", b"Name,Email\n" + b'"' + b'""' * 498 + b'",a@example.com\n'),
    (".csv", b"Name,Email\n" + b"n" * 200_000 + b",a@example.com\n"),
    # item 5: formulas
    (
        ".csv",
        b'Name,Email\n"=HYPERLINK(""http://x"",""y"")",+1@example.com\n@SUM(1),-@example.com\n',
    ),
]
MUTATIONS = [b"", b"\r", b"\n", b" ", b"=", b"=a", b":", b";", b";X", b",", b'"', b"\\",
             b"\xff\xfe", b"BEGIN:VCARD\n", b"END:VCARD\n", b"\x00", b"=C3", b"\xc3",
             b"\x1b]0;"]  # fmt: skip


def read_within_deadline(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        with deadline(DEADLINE, f"reading {data[:80]!r}"):
            try:
                for item in iter_contacts([path]):
                    assert item.source.startswith(str(path))
            except InputError as err:
                assert str(path) in str(err)


@pytest.mark.parametrize(
    ("suffix", "data"), SEEDS, ids=lambda v: v[:24] if isinstance(v, bytes) else v
)
def test_each_seed_is_read_within_the_deadline(suffix: str, data: bytes) -> None:
    read_within_deadline(data, suffix)


def mutate(data: bytes, edits: list[tuple[int, int, bytes, int]]) -> bytes:
    for position, length, insert, times in edits:
        at = position % (len(data) + 1)
        data = data[:at] + insert * times + data[at + length :]
    return data


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 40), st.sampled_from(MUTATIONS),
                  st.integers(1, 60)),
        max_size=5,
    ),
)  # fmt: skip
@example(seed=(".vcf", CARD % b"FN;X=a"), edits=[(70, 0, b"=a", 39)])
def test_mutated_seeds_are_read_within_the_deadline(
    seed: tuple[str, bytes], edits: list[tuple[int, int, bytes, int]]
) -> None:
    suffix, data = seed
    read_within_deadline(mutate(data, edits), suffix)


def test_hostile_card_images_are_read_within_the_deadline(tmp_path: Path) -> None:
    """Issue 17 item 14: a truncated HEIC named .jpg and a PNG claiming 13300x13300
    pixels are one rejected card each, read in seconds, not an aborted batch."""
    pytest.importorskip("rapidocr", reason="the OCR extra is not installed")
    from tests.test_hostile import HOSTILE, png_header

    huge, truncated = tmp_path / "huge.png", tmp_path / "truncated.jpg"
    huge.write_bytes(png_header(13300, 13300))
    truncated.write_bytes((HOSTILE / "truncated-heic.jpg").read_bytes())
    with deadline(60, "reading two hostile card images"):
        items = list(iter_contacts([huge, truncated]))
    assert [type(item).__name__ for item in items] == ["Rejected", "Rejected"]
