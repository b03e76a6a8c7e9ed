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
from dataclasses import dataclass
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers

from .. import DISTRIBUTION, config
from ..errors import InputError, OcrUnavailable
from ..files import private_dir, private_file
from ..language import text_language
from ..models import Contact, Rejected
from .extract import CardFields, OcrLine, extract, split_name
from .qr import decode_qr, parse_payloads

if TYPE_CHECKING:
    from PIL import Image

# mailer is installed from a clone or a wheel; pipx is what the README recommends
INSTALL_HINT = (
    f"pipx install --force '.[ocr]' in your clone of {DISTRIBUTION} "
    "(in a venv: pip install '.[ocr]'; from a wheel: pipx install --force 'WHEEL[ocr]')"
)
CARD_SUFFIXES = frozenset(
    (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".pdf")
)
# Every card is scaled to this long side (RapidOCR's own limit): phone photos of
# 1280 px read better enlarged, and one scale keeps the results consistent.
LONG_SIDE = 2000
MAX_UPSCALE = 2.0  # a thumbnail does not gain detail from being blown up further
PDF_DPI = 300
# Bounds per file, so one hostile file costs seconds and a few hundred MB, not hours or GBs:
MAX_PDF_PAGES = 200  # a scanned stack of cards, not a book
MAX_PIXELS = 64_000_000  # 3 bytes each once decoded; a 48 MP phone photo still fits
_PREPROCESSING = 4  # bump when page loading changes, so old cache entries are not reused

# Plain English headers that the CSV importer maps (name, title, company, email, email2,
# phone, mobile, website); the others are for the reviewer and ignored on import, so no
# header may look like a phone or e-mail column ("number_confidence", not "phone_...").
# "honorific" and "qr_differs" are for the reviewer too ("Dr.", and what the printed text
# says where the card's QR code says something else).
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
    "website",
    "website_confidence",
    "qr_differs",
    "raw_text",
)


@dataclass(frozen=True, slots=True)
class Page:
    """One card: an image file, or one page of a PDF scan."""

    path: Path
    index: int = 0  # 0-based page number

    @property
    def source(self) -> str:
        return f"{self.path}#{self.index + 1}"


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
    for module in ("rapidocr", "onnxruntime", "PIL", "pypdfium2", "zxingcpp"):
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


def load_page(page: Page) -> Image.Image:
    """The card as an upright RGB image, scaled to LONG_SIDE pixels on its long side.
    A file that cannot be a card (truncated, too many pixels, too many pages) raises
    ValueError or OSError with the reason, so that it is reported and the batch goes on."""
    from PIL import Image, ImageOps

    if page.path.suffix.lower() == ".pdf":
        import pypdfium2

        with pypdfium2.PdfDocument(page.path) as document:
            if page.index >= MAX_PDF_PAGES:
                raise ValueError(
                    f"the PDF has {len(document)} pages; only the first {MAX_PDF_PAGES} are "
                    f"read as cards (split the file to read the rest)"
                )
            pdf_page = document[page.index]
            width, height = pdf_page.get_size()  # points
            scale = min(PDF_DPI / 72, LONG_SIDE / max(width, height, 1))
            image: Image.Image = pdf_page.render(scale=scale).to_pil()
    else:
        _register_heif()
        try:
            with warnings.catch_warnings():  # MAX_PIXELS below is the check: no stderr noise
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                opened = Image.open(page.path)
            with opened:
                opened.draft("RGB", (LONG_SIDE, LONG_SIDE))  # JPEG: decode at a reduced size
                width, height = opened.size  # after draft(): what decoding will really take
                if width * height <= MAX_PIXELS:
                    image = ImageOps.exif_transpose(opened).convert("RGB")
        except (EOFError, SyntaxError, RuntimeError, ValueError, struct.error, IndexError) as err:
            # what Pillow's and pillow-heif's decoders raise on a truncated or corrupt file
            raise ValueError(f"damaged or truncated image ({err or type(err).__name__})") from None
        if width * height > MAX_PIXELS:
            raise ValueError(
                f"the image has {width}x{height} pixels; a card photo over "
                f"{MAX_PIXELS // 1_000_000} megapixels is not read (scale it down)"
            )
    scale = min(LONG_SIDE / max(image.size), MAX_UPSCALE)
    if abs(scale - 1) > 0.01:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


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


def _ocr(page: Page) -> tuple[_Lines | None, list[str], str]:
    """Run in a worker: (lines as plain data, QR texts, "") or (None, [], why the card
    is unreadable)."""
    import pypdfium2
    from PIL import Image

    try:
        image = load_page(page)
    except (OSError, ValueError, Image.DecompressionBombError, pypdfium2.PdfiumError) as err:
        return None, [], f"cannot read the file: {err}"
    try:
        codes = list(decode_qr(image))
        result = _engine(image)
    except Exception as err:  # one card the engine chokes on must not end the whole batch
        return None, [], f"the OCR engine failed on this card: {err}"
    if result.boxes is None:
        return [], codes, ""
    return (
        [
            (str(text), [[float(x), float(y)] for x, y in box], float(score))
            for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True)
        ],
        codes,
        "",
    )


# ----------------------------------------------------------------------- the cache


def _file_digest(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _cache_read(path: Path) -> tuple[list[Any], list[str]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return list(data["lines"]), [str(code) for code in data["codes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: read the card again


def _cache_write(path: Path, lines: list[Any], codes: list[str]) -> None:
    try:
        private_dir(path.parent)
        with private_file(path) as handle:
            json.dump({"lines": lines, "codes": codes}, handle)
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
    """OCR every card (image or PDF page) in input order; cached cards are not read again.

    Uncached cards are spread over `workers` processes (default: one per core, at most
    one per card), each with a single-threaded engine so that they do not fight for
    the cores.  A single card is read in this process with all cores."""
    require_ocr()
    cache_root = (cache_dir if cache_dir is not None else default_cache_dir()) / engine_version()
    pages = card_pages(paths)
    digests = {path: _file_digest(path) for path in {page.path for page in pages}}

    def cache_file(page: Page) -> Path | None:
        digest = digests[page.path]
        return cache_root / f"{digest}-{page.index + 1}.json" if digest else None

    cached: dict[Page, tuple[list[Any], list[str]]] = {}
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
            if page in cached:
                lines, codes = cached[page]
                yield CardScan(page.source, _as_lines(lines), codes=tuple(codes))
                continue
            try:
                data, codes, error = next(results)
            except BrokenProcessPool:
                raise InputError(
                    "An OCR worker process died (out of memory?). Cards read so far are "
                    "cached; run again, or with fewer files at a time."
                ) from None
            advance()
            if data is None:
                yield CardScan(page.source, error=error)
                continue
            file = cache_file(page)
            if file is not None:
                _cache_write(file, data, codes)
            yield CardScan(page.source, _as_lines(data), codes=tuple(codes))


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
        phone=_readable(phones["phone"][0].number) if phones["phone"] else "",
        mobile=_readable(phones["mobile"][0].number) if phones["mobile"] else "",
        fax=_readable(phones["fax"][0].number) if phones["fax"] else "",
        more_numbers=", ".join(_readable(p.number) for p in fields.phones if p not in firsts),
        number_confidence=_percent(min((p.confidence for p in firsts), default=0.0), bool(firsts)),
        website=fields.website.value,
        website_confidence=_percent(fields.website.confidence, fields.website.value),
        qr_differs="; ".join(f"{d.field}: printed {d.printed!r}" for d in fields.disagreements),
        raw_text=fields.raw_text,
    )
    return row


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


def read_cards(
    paths: Sequence[Path],
    *,
    region: str = "DE",
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> Iterator[tuple[str, CardFields | None, str]]:
    """(source, fields, "") per card, or (source, None, why unreadable)."""
    for scan in scan_cards(paths, cache_dir=cache_dir, workers=workers):
        if scan.error:
            yield scan.source, None, scan.error
        else:
            codes = parse_payloads(scan.codes)
            yield scan.source, extract(scan.lines, region=region, codes=codes), ""


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
