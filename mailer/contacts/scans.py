"""Card images and PDF scans -> contacts: the OCR engine, its cache and its worker pool.

RapidOCR (ONNX models shipped inside the `rapidocr` wheel, so nothing is
downloaded at run time) reads each card, and zxing-cpp decodes its QR codes;
`extract.py` turns the text lines and the codes into fields.  The engine is the
optional extra `ocr`, imported only when a card is actually read.  OCR
results (the lines and the codes' text, not the fields) are cached by the file's
SHA-256 and the engine version, so a rerun is instant and a better extractor
still applies to cached cards.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers

from .. import DISTRIBUTION, config
from ..csvsafe import write_csv
from ..errors import InputError, OcrUnavailable
from ..files import private_dir, private_file
from ..language import text_language
from ..models import Contact, Rejected
from .extract import CardFields, Field, OcrLine, Phone, extract, split_name
from .qr import decode_qr, parse_payloads

if TYPE_CHECKING:
    from PIL import Image

# mailer is installed from a clone or a wheel; pipx is what the README recommends
INSTALL_HINT = (
    f"pipx install --force '.[ocr]' in your clone of {DISTRIBUTION} "
    "(in a venv: pip install '.[ocr]'; from a wheel: pipx install --force 'WHEEL[ocr]')"
)
# Every card is scaled to this long side (RapidOCR's own limit): phone photos of
# 1280 px read better enlarged, and one scale keeps the results consistent.
LONG_SIDE = 2000
MAX_UPSCALE = 2.0  # a thumbnail does not gain detail from being blown up further
PDF_DPI = 300
# A page is searched for cards at up to this long side: an A4 flatbed scan at ~340 dpi,
# so that each card cut out of it still has ~1100 px for the OCR.
PAGE_SIDE = 4000
# Bounds per file, so one hostile file costs seconds and a few hundred MB, not hours or GBs:
MAX_PDF_PAGES = 200  # a scanned stack of cards, not a book
MAX_PIXELS = 64_000_000  # 3 bytes each once decoded; a 48 MP phone photo still fits
_PREPROCESSING = 5  # bump when page loading changes, so old cache entries are not reused

# Plain English headers that the CSV importer maps (name, title, company, email, email2,
# phone, mobile, website); the others are for the reviewer and ignored on import, so no
# header may look like a phone or e-mail column ("number_confidence", not "phone_...").
# "honorific" and "qr_differs" are for the reviewer too ("Dr.", and what the printed text
# says where the card's QR code says something else).  Numbers printed without +country
# on a card that names no country stay as printed (a "+49" the card never said would
# later count as evidence of the person's language); "number_region" says "DE, assumed"
# and "e164_guess" holds what they would be in that country.
REVIEW_COLUMNS = (
    "file",
    "status",
    "honorific",
    "name",
    "name_confidence",
    "title",
    "title_confidence",
    "company",
    "company_confidence",
    "email",
    "email_confidence",
    "email2",
    "phone",
    "mobile",
    "fax",
    "more_numbers",
    "number_confidence",
    "number_region",
    "e164_guess",
    "website",
    "website_confidence",
    "qr_differs",
    "raw_text",
)


@dataclass(frozen=True, slots=True)
class Page:
    """An image file, or one page of a PDF scan: one card, or several side by side."""

    path: Path
    index: int = 0  # 0-based page number

    @property
    def source(self) -> str:
        return f"{self.path}#{self.index + 1}"

    def card_source(self, place: int, count: int) -> str:
        """ "scan.pdf#2" for a page that is one card, "scan.pdf#2/3" for its third card."""
        return self.source if count < 2 else f"{self.source}/{place + 1}"


def page_of(source: str) -> tuple[Page, int | None]:
    """The page and the card's place (0-based, None for a whole page) a source names."""
    path, _, where = source.rpartition("#")
    number, _, place = where.partition("/")
    page = Page(Path(path), max(int(number or 1) - 1, 0))
    return page, (int(place) - 1 if place.isdigit() else None)


@dataclass(frozen=True, slots=True)
class CardScan:
    """The OCR lines of one card, or why it could not be read."""

    source: str
    lines: tuple[OcrLine, ...] = ()
    error: str = ""
    codes: tuple[str, ...] = ()  # the text of each QR code on the card


def require_ocr() -> None:
    """Fail with the install command when the optional OCR engine is missing."""
    missing = []
    for module in ("rapidocr", "onnxruntime", "PIL", "pypdfium2", "zxingcpp", "cv2"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise OcrUnavailable(
            f"Reading business-card images needs the optional OCR engine "
            f"(missing: {', '.join(missing)}). Install it with: {INSTALL_HINT}"
        )


def engine_version() -> str:
    """Names the cache generation: a new engine or model release reads the cards again."""
    rapid, ort = metadata.version("rapidocr"), metadata.version("onnxruntime")
    zxing = metadata.version("zxing-cpp")
    return f"rapidocr-{rapid}_ort-{ort}_zxing-{zxing}_prep-{_PREPROCESSING}"


def card_pages(paths: Iterable[Path]) -> list[Page]:
    """One page per image; one per page of a PDF (an unreadable PDF still gets one page,
    which then reports the error)."""
    import pypdfium2

    pages: list[Page] = []
    for path in paths:
        if path.suffix.lower() != ".pdf":
            pages.append(Page(path))
            continue
        try:
            document = pypdfium2.PdfDocument(path)
        except (OSError, pypdfium2.PdfiumError):
            pages.append(Page(path))
            continue
        with document:
            # one page past the cap stands for the rest: load_page refuses it with the reason
            pages.extend(
                Page(path, i) for i in range(min(max(len(document), 1), MAX_PDF_PAGES + 1))
            )
    return pages


class UnreadableCard(ValueError):
    """A file that cannot be a card; str() says why, in mailer's words."""


# What Pillow's, pillow-heif's and pdfium's decoders raise on a damaged, truncated or
# hostile file.  Their wording changes between releases (pillow-heif 1.9 reworded its
# errors), so it never reaches the user: load_page says what happened in its own words.
_DECODER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    RuntimeError,  # pypdfium2.PdfiumError and pillow-heif's
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
)


_FORMATS = "mailer reads JPEG, PNG, WebP, BMP, TIFF, GIF, HEIC and PDF"


def load_page(page: Page, long_side: int = LONG_SIDE) -> Image.Image:
    """The page as an upright RGB image, scaled to `long_side` pixels on its long side.
    A file that cannot be a card (truncated, too many pixels, too many pages) raises
    UnreadableCard with the reason, so that it is reported and the batch goes on."""
    from PIL import Image

    pdf = page.path.suffix.lower() == ".pdf"
    damaged: tuple[type[Exception], ...] = (*_DECODER_ERRORS, Image.DecompressionBombError)
    try:
        image = _render_pdf_page(page, long_side) if pdf else _decode_image(page, long_side)
    except UnreadableCard:
        raise
    except (FileNotFoundError, IsADirectoryError):
        raise UnreadableCard("the file is gone (moved or deleted?); check the path") from None
    except PermissionError:
        raise UnreadableCard("no permission to read the file (check its owner and mode)") from None
    except damaged:  # Pillow says "cannot identify" for a damaged file in a known format too
        what = "a damaged PDF" if pdf else f"a damaged or truncated image, or no image ({_FORMATS})"
        raise UnreadableCard(
            f"{what}; if it opens in a viewer, save it again from there, or take a new photo"
        ) from None
    return fit(image, long_side)


def fit(image: Image.Image, long_side: int = LONG_SIDE) -> Image.Image:
    """The image scaled to `long_side` px on its long side (enlarged at most MAX_UPSCALE)."""
    from PIL import Image

    scale = min(long_side / max(image.size), MAX_UPSCALE)
    if abs(scale - 1) > 0.01:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _render_pdf_page(page: Page, long_side: int) -> Image.Image:
    import pypdfium2

    with pypdfium2.PdfDocument(page.path) as document:
        if page.index >= MAX_PDF_PAGES:
            raise UnreadableCard(
                f"the PDF has {len(document)} pages; only the first {MAX_PDF_PAGES} are "
                f"read as cards (split the file to read the rest)"
            )
        pdf_page = document[page.index]
        width, height = pdf_page.get_size()  # points
        scale = min(PDF_DPI / 72, long_side / max(width, height, 1))
        image: Image.Image = pdf_page.render(scale=scale).to_pil()
        return image


def _decode_image(page: Page, long_side: int) -> Image.Image:
    from PIL import Image, ImageOps

    _register_heif()
    # MAX_PIXELS below is the size check, and a damaged file is reported once, as one
    # rejected card: no decoder warnings on stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like
        with Image.open(page.path) as opened:
            opened.draft("RGB", (long_side, long_side))  # JPEG: decode at a reduced size
            width, height = opened.size  # after draft(): what decoding will really take
            if width * height > MAX_PIXELS:
                raise UnreadableCard(
                    f"the image has {width}x{height} pixels; a card photo over "
                    f"{MAX_PIXELS // 1_000_000} megapixels is not read (scale it down)"
                )
            return ImageOps.exif_transpose(opened).convert("RGB")


def page_cards(page: Page) -> list[Image.Image]:
    """The cards on a page (layout.py), each cut out, straightened and scaled for the
    OCR; the whole page when it holds one card."""
    from .layout import crop, find_cards

    image = load_page(page)  # one card: exactly what is read, as fast as before
    quads = find_cards(image)
    if not quads:
        return [image]
    full = load_page(page, PAGE_SIDE)  # several: each cut from the page at full detail
    factor = full.width / image.width
    return [fit(crop(full, quad.scaled(factor))) for quad in quads]


def _register_heif() -> None:
    """HEIC photos (iPhone) are readable when the optional pillow-heif is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()


# ---------------------------------------------------------------------- the engine

_engine: Any = None  # one RapidOCR per process: loading the models takes ~1 s


def _init_engine(threads: int) -> None:
    global _engine
    from rapidocr import RapidOCR

    _engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


_Lines = list[tuple[str, list[list[float]], float]]
_Card = dict[str, Any]  # {"lines": _Lines, "codes": [QR text, ...]}: one card, as cached


def _ocr(page: Page) -> tuple[list[_Card] | None, str]:
    """Run in a worker: (each card of the page as plain data, "") or (None, why the page
    is unreadable)."""
    import pypdfium2
    from PIL import Image

    try:
        images = page_cards(page)
    except (OSError, ValueError, Image.DecompressionBombError, pypdfium2.PdfiumError) as err:
        return None, f"cannot read the file: {err}"
    cards = []
    for image in images:
        try:
            codes = list(decode_qr(image))
            result = _engine(image)
        except Exception as err:  # one card the engine chokes on must not end the whole batch
            return None, f"the OCR engine failed on this card: {err}"
        lines: _Lines = (
            []
            if result.boxes is None
            else [
                (str(text), [[float(x), float(y)] for x, y in box], float(score))
                for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True)
            ]
        )
        cards.append({"lines": lines, "codes": codes})
    return cards, ""


# ----------------------------------------------------------------------- the cache


def _file_digest(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _cache_read(path: Path) -> list[_Card] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [
            {"lines": list(card["lines"]), "codes": [str(code) for code in card["codes"]]}
            for card in data["cards"]
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: read the page again


def _cache_write(path: Path, cards: list[_Card]) -> None:
    try:
        private_dir(path.parent)
        with private_file(path) as handle:
            json.dump({"cards": cards}, handle)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _as_lines(data: list[Any]) -> tuple[OcrLine, ...]:
    return tuple(
        OcrLine(text, tuple((float(x), float(y)) for x, y in box), float(score))
        for text, box, score in data
    )


# --------------------------------------------------------------------- the pipeline


def default_cache_dir() -> Path:
    folder = config.state_dir(config.environment()) / "ocr-cache"
    return private_dir(folder)  # private whatever the umask, like the state


def scan_cards(
    paths: Sequence[Path],
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> Iterator[CardScan]:
    """OCR every card of every page (image or PDF page) in input order; cached pages are
    not read again.

    Uncached pages are spread over `workers` processes (default: one per core, at most
    one per page), each with a single-threaded engine so that they do not fight for
    the cores.  A single page is read in this process with all cores."""
    require_ocr()
    cache_root = (cache_dir if cache_dir is not None else default_cache_dir()) / engine_version()
    pages = card_pages(paths)
    digests = {path: _file_digest(path) for path in {page.path for page in pages}}

    def cache_file(page: Page) -> Path | None:
        digest = digests[page.path]
        return cache_root / f"{digest}-{page.index + 1}.json" if digest else None

    cached: dict[Page, list[_Card]] = {}
    for page in pages:
        file = cache_file(page)
        entry = _cache_read(file) if file is not None else None
        if entry is not None:
            cached[page] = entry
    todo = [page for page in pages if page not in cached]
    count = min(workers or os.cpu_count() or 1, len(todo))
    show = sys.stderr.isatty() if progress is None else progress

    with _progress(len(todo), show) as advance, _pool(count) as pool:
        results = pool.map(_ocr, todo) if pool is not None else map(_ocr, todo)
        for page in pages:
            cards = cached.get(page)
            if cards is None:
                try:
                    cards, error = next(results)
                except BrokenProcessPool:
                    raise InputError(
                        "An OCR worker process died (out of memory?). Cards read so far are "
                        "cached; run again, or with fewer files at a time."
                    ) from None
                advance()
                if cards is None:
                    yield CardScan(page.source, error=error)
                    continue
                file = cache_file(page)
                if file is not None:
                    _cache_write(file, cards)
            for place, card in enumerate(cards):
                yield CardScan(
                    page.card_source(place, len(cards)),
                    _as_lines(card["lines"]),
                    codes=tuple(card["codes"]),
                )


@contextmanager
def _pool(count: int) -> Iterator[ProcessPoolExecutor | None]:
    """A process pool of single-threaded engines for two or more workers; for one card,
    None: it is read in this process by an engine using every core."""
    if count < 2:
        if count == 1 and _engine is None:
            _init_engine(os.cpu_count() or 1)
        yield None
        return
    # spawn, not fork: the parent may already run threads (progress bar, onnxruntime)
    pool = ProcessPoolExecutor(
        count, mp_context=get_context("spawn"), initializer=_init_engine, initargs=(1,)
    )
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr, for a person watching a terminal; yields `advance`."""
    if not show or total == 0:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("Reading cards", total=total)
        yield lambda: bar.advance(task)


# ----------------------------------------------------------------- fields -> contact


def review_row(source: str, fields: CardFields | None, error: str = "") -> dict[str, str]:
    """One row of the review CSV (REVIEW_COLUMNS), as the user will correct it."""
    row = dict.fromkeys(REVIEW_COLUMNS, "")
    row["file"] = source
    if fields is None:
        row["status"] = error
        return row
    phones = {
        kind: [p for p in fields.phones if p.kind == kind] for kind in ("phone", "mobile", "fax")
    }
    firsts = [found[0] for found in phones.values() if found]
    row.update(
        status="no e-mail found"
        if not fields.emails
        else ("needs review" if fields.needs_review else "ok"),
        honorific=fields.honorific.value,
        name=fields.name.value,
        name_confidence=_percent(fields.name.confidence, fields.name.value),
        title=fields.title.value,
        title_confidence=_percent(fields.title.confidence, fields.title.value),
        company=fields.company.value,
        company_confidence=_percent(fields.company.confidence, fields.company.value),
        email=fields.email.value,
        email_confidence=_percent(fields.email.confidence, fields.email.value),
        email2=fields.emails[1].value if len(fields.emails) > 1 else "",
        phone=_shown(phones["phone"][0], fields) if phones["phone"] else "",
        mobile=_shown(phones["mobile"][0], fields) if phones["mobile"] else "",
        fax=_shown(phones["fax"][0], fields) if phones["fax"] else "",
        more_numbers=", ".join(_shown(p, fields) for p in fields.phones if p not in firsts),
        number_confidence=_percent(min((p.confidence for p in firsts), default=0.0), bool(firsts)),
        number_region=(fields.region + (", assumed" if fields.region_assumed else ""))
        if fields.phones
        else "",
        e164_guess=", ".join(
            _readable(p.number) for p in fields.phones if _shown(p, fields) != _readable(p.number)
        ),
        website=fields.website.value,
        website_confidence=_percent(fields.website.confidence, fields.website.value),
        qr_differs="; ".join(f"{d.field}: printed {d.printed!r}" for d in fields.disagreements),
        raw_text=fields.raw_text,
    )
    return row


def write_review(out: Path, rows: list[dict[str, str]]) -> None:
    """The review CSV, one row per card, through the writer that defuses formulas."""
    try:
        write_csv(out, REVIEW_COLUMNS, rows)
    except OSError as err:
        raise InputError(f"Cannot write {out}: {err.strerror}") from None


def _shown(phone: Phone, fields: CardFields) -> str:
    """The number for the review CSV: as printed when its country is only assumed."""
    national = phone.printed and not phone.printed.lstrip().startswith(("+", "00"))
    return phone.printed.strip() if fields.region_assumed and national else _readable(phone.number)


def _readable(e164: str) -> str:
    """ "+49 30 1234567": spaces keep spreadsheets from turning the number into 4.93E+10."""
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _percent(confidence: float, present: object) -> str:
    return f"{confidence:.2f}" if present else ""


def to_contact(source: str, fields: CardFields) -> Contact | Rejected:
    """A contact when the card has a valid e-mail; it needs review when that e-mail is a guess."""
    if not fields.emails:
        row = review_row(source, fields)
        kept = {k: v for k, v in row.items() if v and k not in ("file", "status")}
        return Rejected(source, "no e-mail address found on the card", kept)
    given, family = split_name(fields.name.value)
    ordered = sorted(
        (p for p in fields.phones if p.kind != "fax"), key=lambda p: p.kind != "mobile"
    )
    return Contact(
        email=fields.email.value,
        name=fields.name.value,
        given=given,
        family=family,
        emails=tuple(e.value for e in fields.emails),
        org=fields.company.value,
        title=fields.title.value,
        phones=tuple(p.number for p in ordered),
        website=fields.website.value,
        source=source,
        needs_review=fields.needs_review,
        text_lang=text_language(fields.raw_text),
    )


def is_back(fields: CardFields) -> bool:
    """A card's back side, not a card: no name, e-mail, number or web site, and at most
    a few lines (blank, a logo, a slogan)."""
    lines = [part for part in fields.raw_text.split(" | ") if part.strip()]
    found = fields.name.value or fields.emails or fields.phones or fields.website.value
    return not found and len(lines) <= 3


def same_person(front: CardFields, back: CardFields) -> bool:
    """The back is the front's person in another language: it has no e-mail of its own
    (or the front's), and shares a phone number or an e-mail address with the front."""
    emails = {e.value for e in back.emails}
    if emails - {e.value for e in front.emails}:
        return False
    numbers = {p.number for p in back.phones}
    return bool(numbers & {p.number for p in front.phones} or emails)


def merge_sides(front: CardFields, back: CardFields) -> CardFields:
    """One card from both sides: the front's fields, the back's where the front has none."""

    def either(mine: Field, theirs: Field) -> Field:
        return mine if mine.value else theirs

    seen = {e.value for e in front.emails}
    numbers = {p.number for p in front.phones}
    return replace(
        front,
        name=either(front.name, back.name),
        honorific=either(front.honorific, back.honorific) if not front.name.value else (
            front.honorific),
        title=either(front.title, back.title),
        company=either(front.company, back.company),
        emails=front.emails + tuple(e for e in back.emails if e.value not in seen),
        phones=front.phones + tuple(p for p in back.phones if p.number not in numbers),
        website=either(front.website, back.website),
        raw_text=" | ".join(filter(None, (front.raw_text, back.raw_text))),
    )  # fmt: skip


Card = tuple[str, "CardFields | None", str]  # (source, fields or None, why unreadable)
OnBack = Callable[[str, str], None]  # (source of a back side, the front's source or "")


def read_cards(
    paths: Sequence[Path],
    *,
    region: str = "DE",
    cache_dir: Path | None = None,
    workers: int | None = None,
    duplex: bool = False,
    on_back: OnBack | None = None,
) -> Iterator[Card]:
    """(source, fields, "") per card, or (source, None, why unreadable).  Back sides are
    not cards: a blank or logo-only back is left out, a back with the front's person in
    another language is merged into the front; `on_back` hears of each.  With `duplex`
    the cards are read as pairs (front, back, front, back ...), every second one a back."""
    cards = (
        (scan.source, extract(scan.lines, region=region, codes=parse_payloads(scan.codes)), "")
        if not scan.error
        else (scan.source, None, scan.error)
        for scan in scan_cards(paths, cache_dir=cache_dir, workers=workers)
    )
    heard = on_back or (lambda source, front: None)
    front: Card | None = None
    for number, card in enumerate(cards):
        source, fields, _ = card
        back_turn = number % 2 == 1 if duplex else True
        if back_turn and fields is not None and front is not None and front[1] is not None:
            if is_back(fields):
                heard(source, "")
                continue
            if _belongs(front[0], front[1], source, fields, duplex=duplex):
                heard(source, front[0])
                front = (front[0], merge_sides(front[1], fields), "")
                continue
        if front is not None:
            yield front
        front = card
    if front is not None:
        yield front


def _belongs(
    front_source: str, front: CardFields, source: str, fields: CardFields, *, duplex: bool
) -> bool:
    """The card is the back of the one before: its pair in a duplex scan (unless it names
    another address), else the same person on the next page of the same file."""
    if duplex:
        return not {e.value for e in fields.emails} - {e.value for e in front.emails}
    return _same_file(front_source, source) and same_person(front, fields)


def _same_file(a: str, b: str) -> bool:
    return a.rpartition("#")[0] == b.rpartition("#")[0]


def iter_cards(
    paths: Sequence[Path],
    *,
    region: str = "DE",
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> Iterator[Contact | Rejected]:
    """One Contact or Rejected per card, in input order (the contacts dispatcher's entry)."""
    for source, fields, error in read_cards(
        paths, region=region, cache_dir=cache_dir, workers=workers
    ):
        yield to_contact(source, fields) if fields is not None else Rejected(source, error)
