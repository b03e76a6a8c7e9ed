"""Issue 23 item 1: every decoder error of Pillow, pillow-heif and pdfium is one rejected
card in mailer's own words.  The decoders reword their errors between releases
(pillow-heif 1.9 did), so no assertion here reads a decoder's message: each one checks
that the reason is one of mailer's and carries none of the decoder's text."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("rapidocr", reason="the OCR extra is not installed")

from PIL import Image

from mailer.contacts import load_contacts
from mailer.contacts.scans import Page, UnreadableCard, load_page

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
# Pillow cannot tell a damaged file in a known format from no image at all: one reason
DAMAGED = "a damaged or truncated image, or no image (mailer reads JPEG, PNG, "
DAMAGED_PDF = "a damaged PDF; "
NEXT_STEP = "; if it opens in a viewer, save it again from there, or take a new photo"


def encoded(fmt: str) -> bytes:
    """A small real picture in `fmt`, so a damaged copy gets past the format sniffing."""
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    buffer = io.BytesIO()
    picture = Image.linear_gradient("L").convert("RGB").resize((320, 200))
    if fmt == "PDF":
        picture.save(buffer, format="PDF", resolution=72)
    else:
        picture.save(buffer, format=fmt)
    return buffer.getvalue()


def cut(fmt: str) -> Callable[[], bytes]:
    return lambda: encoded(fmt)[: len(encoded(fmt)) // 2]


def scrambled(fmt: str) -> Callable[[], bytes]:
    """The header intact, the coded data behind it overwritten."""

    def make() -> bytes:
        data = bytearray(encoded(fmt))
        start = len(data) // 3
        data[start : start + 200] = bytes((i * 37 + 11) % 256 for i in range(200))
        return bytes(data)

    return make


def tiff_with_a_wild_offset() -> bytes:
    return b"II*\x00" + struct.pack("<I", 0x7FFF_FFF0) + b"\0" * 64


CASES: list[tuple[str, Callable[[], bytes], str]] = [
    ("heic-truncated.jpg", lambda: (HOSTILE / "truncated-heic.jpg").read_bytes(), DAMAGED),
    ("heic-truncated.heic", lambda: (HOSTILE / "truncated-heic.jpg").read_bytes(), DAMAGED),
    ("cut.heic", cut("HEIF"), DAMAGED),
    ("scrambled.heic", scrambled("HEIF"), DAMAGED),
    ("cut.png", cut("PNG"), DAMAGED),
    ("scrambled.png", scrambled("PNG"), DAMAGED),
    ("cut.jpg", cut("JPEG"), DAMAGED),
    ("cut.webp", cut("WEBP"), DAMAGED),
    ("cut.gif", cut("GIF"), DAMAGED),
    ("wild-offset.tif", tiff_with_a_wild_offset, DAMAGED),
    ("garbage.png", lambda: b"this is no picture\n" * 20, DAMAGED),
    ("empty.jpg", lambda: b"", DAMAGED),
    ("garbage.pdf", lambda: b"%PDF-1.7\n" + b"\x00\xff" * 300, DAMAGED_PDF),
    ("cut.pdf", cut("PDF"), DAMAGED_PDF),
]


@pytest.mark.parametrize(("name", "make", "reason"), CASES, ids=[c[0] for c in CASES])
def test_a_damaged_file_is_refused_in_mailers_words(
    tmp_path: Path, name: str, make: Callable[[], bytes], reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(UnreadableCard) as refused:
        load_page(Page(path))
    message = str(refused.value)
    # mailer's reason and the next step, and nothing of the decoder's words
    assert message.startswith(reason) and message.endswith(NEXT_STEP), message


def test_each_damaged_file_is_one_rejected_card_and_the_batch_goes_on(tmp_path: Path) -> None:
    paths = []
    for name, make, _ in CASES:
        path = tmp_path / name
        path.write_bytes(make())
        paths.append(path)
    result = load_contacts(paths)
    assert result.contacts == []
    assert sorted(Path(r.source.rpartition("#")[0]).name for r in result.rejected) == sorted(
        c[0] for c in CASES
    )
    expected = {name: reason for name, _, reason in CASES}
    for rejected in result.rejected:
        name = Path(rejected.source.rpartition("#")[0]).name
        assert rejected.reason.startswith("cannot read the file: " + expected[name])


def test_a_missing_file_is_refused_in_mailers_words(tmp_path: Path) -> None:
    with pytest.raises(UnreadableCard, match="the file is gone"):
        load_page(Page(tmp_path / "gone.jpg"))
