"""The card review page: one self-contained HTML file, each card's photo beside its fields.

The page holds everything it shows (photos as data: URIs, styles and script
inline) and a Content-Security-Policy that lets it load nothing, so it works
from a file and nothing leaves the machine.  Fields are ordinary inputs; the
"Save corrected CSV" button builds the review CSV in plain JavaScript (same
columns, order, quoting, BOM and formula guard as `cards review` writes: see
`csv_script`) and offers it as a download.  Cards without an e-mail address come
first, then those that need review; low-confidence fields are highlighted and
fields where the QR code and the printed text disagree are marked.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..files import private_file
from .extract import EMAIL_REVIEW_THRESHOLD
from .scans import REVIEW_COLUMNS, Page, page_cards, page_of

if TYPE_CHECKING:
    from PIL import Image

EDITABLE = ("honorific", "name", "title", "company", "email", "email2", "phone", "mobile", "fax",
            "more_numbers", "website")  # fmt: skip
_CONFIDENCE = {"name": "name_confidence", "title": "title_confidence",
               "company": "company_confidence", "email": "email_confidence",
               "phone": "number_confidence", "mobile": "number_confidence",
               "website": "website_confidence"}  # fmt: skip
_FIELD_OF_DIFFERENCE = {"name": "name", "email": "email", "title": "title",
                        "company": "company", "website": "website"}  # fmt: skip
THUMBNAIL = 900  # px on the long side: enough to read a card, small enough for 100 cards
_ORDER = {"ok": 2, "needs review": 1}  # anything else (no e-mail, unreadable) first

_STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
header { position: sticky; top: 0; background: #fff; padding: .5em 0;
         border-bottom: 1px solid #ccc; }
section { display: flex; gap: 1.5em; padding: 1em 0; border-bottom: 1px solid #ddd; }
section img { max-width: 45%; max-height: 420px; object-fit: contain; border: 1px solid #ccc; }
.fields { flex: 1; display: grid; grid-template-columns: 9em 1fr; gap: .3em .8em;
          align-content: start; }
label { text-align: right; color: #555; padding-top: .25em; }
input { font: inherit; padding: .2em .4em; border: 1px solid #bbb; }
input.low { background: #fff3c4; border-color: #d9a400; }
input.differs { outline: 2px solid #c0392b; }
.status { grid-column: 1 / -1; font-weight: bold; }
.status.bad { color: #c0392b; } .status.review { color: #b07800; } .status.ok { color: #2e7d32; }
.note { grid-column: 2; font-size: 90%; color: #c0392b; margin-top: -.2em; }
button { font: inherit; padding: .4em 1em; }
"""

# Writes exactly what csv.DictWriter writes for REVIEW_COLUMNS (QUOTE_MINIMAL, "\r\n",
# UTF-8 with BOM), with the same formula guard as cli.scans._cell.
_SCRIPT = """
const data = JSON.parse(document.getElementById("data").textContent);
function guard(v) {
  if (/^[=+\\-@\\t\\r]/.test(v) && !/^\\+[\\d ]+$/.test(v)) return "'" + v;
  return v;
}
function quote(v) {
  return /[",\\r\\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}
function csvText() {
  const rows = data.rows.map(r => Object.assign({}, r));
  for (const input of document.querySelectorAll("input[data-row]")) {
    rows[Number(input.dataset.row)][input.name] = input.value.trim();
  }
  const lines = [data.columns.map(quote).join(",")];
  for (const row of rows) lines.push(data.columns.map(c => quote(guard(row[c] || ""))).join(","));
  return "\\ufeff" + lines.join("\\r\\n") + "\\r\\n";
}
document.getElementById("save").addEventListener("click", () => {
  const blob = new Blob([csvText()], {type: "text/csv;charset=utf-8"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = data.filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  document.getElementById("saved").textContent =
    "Saved as " + data.filename + " in your downloads folder: use it with mailer preview / send.";
});
"""


def photo_uri(source: str) -> str:
    """The card (image file, PDF page "file#N", or card K of a page "file#N/K") as a
    small JPEG data: URI; "" when it cannot be read (the page then shows the fields
    without a photo)."""
    import pypdfium2
    from PIL import Image

    page, place = page_of(source)
    try:
        cards = _cards_of(page)
        image = cards[place] if place is not None else cards[0]
    except (OSError, ValueError, IndexError, Image.DecompressionBombError, pypdfium2.PdfiumError):
        return ""  # an unreadable card is already reported in its status column
    image = image.copy()
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@lru_cache(maxsize=1)  # the cards of one page are rows next to each other
def _cards_of(page: Page) -> list[Image.Image]:
    return page_cards(page)


def _differences(row: dict[str, str]) -> dict[str, str]:
    """{field: what the print says} from the qr_differs column."""
    found: dict[str, str] = {}
    for part in row.get("qr_differs", "").split("; "):
        field, _, printed = part.partition(": printed ")
        if field in _FIELD_OF_DIFFERENCE and printed:
            found[field] = printed
    return found


def _status_class(status: str) -> str:
    return {"ok": "ok", "needs review": "review"}.get(status, "bad")


def render_page(rows: Sequence[dict[str, str]], photos: Sequence[str], csv_name: str) -> str:
    """The whole page as text; `photos[i]` is row i's data: URI (or "")."""
    order = sorted(range(len(rows)), key=lambda i: (_ORDER.get(rows[i]["status"], 0), i))
    sections = []
    for i in order:
        row, differs = rows[i], _differences(rows[i])
        status = row["status"] or "unreadable"
        parts = [
            f'<section id="card-{i}" data-status="{html.escape(status)}">',
            f'<img alt="{html.escape(row["file"])}" src="{photos[i]}">' if photos[i] else "",
            '<div class="fields">',
            f'<div class="status {_status_class(status)}">{html.escape(row["file"])}: '
            f"{html.escape(status)}</div>",
        ]
        for column in EDITABLE:
            classes = []
            confidence = row.get(_CONFIDENCE.get(column, ""), "")
            if confidence and float(confidence) < EMAIL_REVIEW_THRESHOLD:
                classes.append("low")
            if column in differs:
                classes.append("differs")
            attributes = f' class="{" ".join(classes)}"' if classes else ""
            if confidence:
                attributes += f' title="confidence {html.escape(confidence)}"'
            parts.append(
                f'<label for="f{i}-{column}">{column.replace("_", " ")}</label>'
                f'<input id="f{i}-{column}" name="{column}" data-row="{i}"{attributes} '
                f'value="{html.escape(row.get(column, ""))}">'
            )
            if column in differs:
                parts.append(
                    f'<div class="note">QR code and print differ; printed: '
                    f"{html.escape(differs[column])}</div>"
                )
        parts.append("</div></section>")
        sections.append("".join(parts))
    # Inside <script>, "</" could end the element: JSON escapes "<" so it cannot.
    payload = json.dumps(
        {"columns": REVIEW_COLUMNS, "rows": list(rows), "filename": csv_name},
        ensure_ascii=False,
    ).replace("<", "\\u003c")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
        f"<title>Review {len(rows)} business cards</title><style>{_STYLE}</style></head>\n"
        "<body><header><h1>Business cards: check and correct</h1>"
        "<p>Yellow: read with low confidence. Red outline: the QR code says something "
        "else than the print (the code's value is filled in). Cards without an e-mail "
        "address come first.</p>"
        '<button id="save" type="button">Save corrected CSV</button> '
        '<span id="saved"></span></header>\n'
        + "\n".join(sections)
        + f'\n<script type="application/json" id="data">{payload}</script>\n'
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def write_page(out: Path, rows: Sequence[dict[str, str]], csv_name: str) -> None:
    """Write the review page whole or not at all (owner-only, like every file mailer writes)."""
    text = render_page(rows, [photo_uri(row["file"]) for row in rows], csv_name)
    try:
        with private_file(out.resolve()) as handle:
            handle.write(text)
    except OSError as err:
        raise InputError(f"Cannot write {out}: {err.strerror}") from None
