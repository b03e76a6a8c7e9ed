"""Several cards on one page (flatbed scans, phone photos of a few cards) and duplex
scans (front, back, ...): every card found once, read as its own contact, back sides
neither reported as cards nor lost.  Pages are composed here (cardgen.py) with seeds
apart from those the layout was tuned on (bench/bench_ocr.py)."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import sys
from pathlib import Path

import pytest

pytest.importorskip("rapidocr", reason="the OCR extra is not installed: pip install '.[ocr]'")
pytest.importorskip("cv2", reason="OpenCV comes with the OCR extra")

from click.testing import CliRunner
from PIL import Image

from mailer.cli import main
from mailer.contacts.layout import find_cards
from mailer.contacts.review_page import photo_uri
from mailer.contacts.scans import Page, iter_cards, load_page, page_of
from mailer.models import Contact
from tests.tools import require_tool

sys.path.insert(0, str(Path(__file__).parent))
from cardgen import PageSpec, make_duplex, make_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", autouse=True)
def fonts() -> None:
    require_tool("fonts")


@pytest.mark.parametrize(
    ("spec", "photo"),
    [
        (PageSpec(8, "light", 300), False),
        (PageSpec(10, "light", 200), False),
        (PageSpec(4, "dark", 300), False),
        (PageSpec(12, "dark", 200, 3), False),
        (PageSpec(3, "light", 400, 3), False),
        (PageSpec(2, "dark", 200, 1), False),
        (PageSpec(3, "dark", 300, 2, 8), True),
        (PageSpec(4, "dark", 300, 2, 8), True),
    ],
)
def test_every_card_on_a_page_is_found_once(tmp_path: Path, spec: PageSpec, photo: bool) -> None:
    path = tmp_path / ("page.jpg" if photo else "page.png")
    make_page(path, spec, seed=9000 + spec.cards * 7 + spec.dpi, photo=photo)
    image = load_page(Page(path))  # what the pipeline searches
    quads = find_cards(image)
    assert len(quads) == spec.cards
    centres = [q.center for q in quads]  # reading order: rows down the page
    rows = [centres[i : i + spec.columns] for i in range(0, len(centres), spec.columns)]
    assert all(a[0][1] < b[0][1] for a, b in itertools.pairwise(rows))
    assert all(x0 < x1 for row in rows for (x0, _), (x1, _) in itertools.pairwise(row))


def test_one_card_filling_the_image_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    make_page(path, PageSpec(1, "light", 300, 1), seed=9100)
    card = load_page(Page(path)).crop((0, 0, 1000, 700))  # the card, edge to edge
    assert find_cards(card) == []


def test_a_card_cut_off_by_the_frame_is_not_a_card(tmp_path: Path) -> None:
    """A phone photo of one card with the edge of a neighbour in the frame: one card, read
    whole as before, not two."""
    path = tmp_path / "two.jpg"
    make_page(path, PageSpec(2, "dark", 300, 2, 8), seed=9150, photo=True)
    image = load_page(Page(path))
    assert len(find_cards(image)) == 2
    assert find_cards(image.crop((0, 0, round(image.width * 0.7), image.height))) == []


def test_a_flatbed_page_gives_one_contact_per_card(tmp_path: Path) -> None:
    """The issue's first case: one page, several people; each gets their own contact,
    named by the page and its place, and the review page shows that card's crop."""
    path = tmp_path / "scan.png"
    truths = make_page(path, PageSpec(4, "light", 200), seed=9200)
    items = list(iter_cards([path], region="DE", cache_dir=tmp_path / "cache"))
    assert all(isinstance(i, Contact) for i in items)
    assert [(i.source, i.email) for i in items] == [
        (f"{path}#1/{n}", t.email) for n, t in enumerate(truths, 1)
    ]
    pairs = zip(items, truths, strict=True)
    names = sum(isinstance(i, Contact) and i.name == t.name for i, t in pairs)
    assert names >= 3
    assert page_of(f"{path}#1/3") == (Page(path), 2)
    crops = [photo_uri(f"{path}#1/{n}") for n in (1, 2)]
    images = [Image.open(io.BytesIO(base64.b64decode(c.partition(",")[2]))) for c in crops]
    assert crops[0] != crops[1]
    assert all(1.4 < im.width / im.height < 2.0 for im in images)  # a card, not the page


def test_a_phone_photo_of_three_cards(tmp_path: Path) -> None:
    path = tmp_path / "table.jpg"
    truths = make_page(path, PageSpec(3, "dark", 300, 2, 8), seed=9300, photo=True)
    items = list(iter_cards([path], region="DE", cache_dir=tmp_path / "cache"))
    assert [getattr(i, "email", "") for i in items] == [t.email for t in truths]


def test_duplex_backs_are_merged_or_left_out(tmp_path: Path, isolated_env: Path) -> None:
    """Front, back, front, back: blank and logo backs are no rejected cards, a back
    with the same person in another language joins its front; with --duplex too."""
    pdf = tmp_path / "duplex.pdf"
    sides = make_duplex(pdf, 3, seed=9400)  # backs: blank, logo, translated
    items = list(iter_cards([pdf], region="DE"))  # cached for the command below
    assert [i.source for i in items if isinstance(i, Contact)] == [f"{pdf}#{n}" for n in (1, 3, 5)]
    emails = [(i.email, truth.email) for i, (truth, _) in zip(items, sides, strict=True)]
    assert sum(read == printed for read, printed in emails) >= 2  # an OCR slip is no layout's
    translated = items[2]
    assert isinstance(translated, Contact) and "Directeur des ventes" not in translated.title

    out = tmp_path / "reviewed.csv"
    result = CliRunner().invoke(main, ["cards", "review", str(pdf), "--out", str(out), "--duplex"])
    assert result.exit_code == 0, result.output
    assert "3 back sides: 1 merged into their front, 2 without" in result.output
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["email"] for r in rows] == [getattr(i, "email", "") for i in items]
    assert "Directeur des ventes" in rows[2]["raw_text"]
