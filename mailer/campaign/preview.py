"""The dry run: a plan written as one `.eml` per message plus an `index.html`.

The index shows, per entry read, what a send would do with it (new, already
mailed, duplicate, rejected, suppressed, ...), the language and why, and the message
as the recipient would see it (the HTML in a sandboxed frame) beside its
plain-text part.  Nothing is sent and nothing is recorded in the journal.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from jinja2 import Environment

from ..errors import ConfigError
from ..files import new_file, private_dir
from .plan import PlanItem, Status, summary_line

# Entries per HTML page: 100k entries are 500 pages of a few MB, not one page of 400 MB.
PAGE = 200
SHOWN = 200  # entries the summary keeps for the terminal table
# Lists every file a preview wrote into its folder: only those are ever replaced or
# removed, and a folder without it must be empty before mailer writes into it.
MARKER = ".mailer-preview"


@dataclass(frozen=True, slots=True)
class PreviewSummary:
    index: Path  # the index.html to open
    messages: int  # .eml files written
    counts: Mapping[Status, int]  # entries per status, in Status order
    total: int  # entries read
    items: tuple[PlanItem, ...]  # the first SHOWN of them

    def line(self) -> str:
        return summary_line(self.counts)


def write_preview(
    items: Iterable[PlanItem], out: Path, *, date: datetime | None = None
) -> PreviewSummary:
    """Write `NNNN-address.eml` for every item with a draft, and `out/index.html`
    (the first PAGE entries, with links to `page-NNNN.html` for the rest), streaming:
    memory does not grow with the number of entries.  `out` must be new, empty or
    an earlier preview's folder, whose files are replaced; mailer never writes
    through a symlink nor removes a file it did not write.  `date` is the Date the
    .eml files carry (default: now; a real send stamps its own)."""
    when = date if date is not None else datetime.now().astimezone()
    stamp = when.strftime("%Y-%m-%d %H:%M %Z")
    counted: Counter[Status] = Counter()
    shown: list[PlanItem] = []
    messages = total = 0
    try:
        written = _claim(out)
        first: list[dict[str, object]] = []  # index.html shows them; later ones go to pages
        rows: list[dict[str, object]] = []
        pages: list[str] = []
        for total, item in enumerate(items, 1):
            counted[item.status] += 1
            if len(shown) < SHOWN:
                shown.append(item)
            eml = ""
            if item.draft is not None:
                eml = f"{total:04d}-{_file_part(item.email)}.eml"
                _write(out, eml, item.draft.wire(when), written)
                messages += 1
            (first if total <= PAGE else rows).append({"number": total, "item": item, "eml": eml})
            if len(rows) == PAGE:
                pages.append(_page(out, len(pages) + 2, rows, stamp, written))
                rows = []
        if rows:
            pages.append(_page(out, len(pages) + 2, rows, stamp, written))
        counts = {status: counted[status] for status in Status if counted[status]}
        index = out / "index.html"
        html = _INDEX.render(rows=first, counts=counts, total=total, pages=pages, date=stamp,
                             fit_script=_FIT_FRAMES, fit_hash=_FIT_HASH)
        _write(out, index.name, html.encode("utf-8"), written)
    except OSError as err:
        raise ConfigError(f"Cannot write the preview to {out}: {err.strerror or err}") from None
    return PreviewSummary(index, messages, counts, total, tuple(shown))


def _claim(out: Path) -> TextIO:
    """Make `out` this preview's folder: the earlier preview's files removed, the marker
    open for appending the names written now.  Refuses a symlink and a folder with
    files of someone else's."""
    if out.is_symlink():
        raise ConfigError(f"--out {out} is a symbolic link; give the folder itself.")
    private_dir(out)
    marker = out / MARKER
    if not marker.is_file() or marker.is_symlink():
        if any(out.iterdir()):
            raise ConfigError(
                f"--out {out} already holds files that mailer did not write; give a new or "
                f"empty folder (mailer replaces only its own earlier preview)."
            )
        earlier: list[str] = []
    else:
        earlier = marker.read_text(encoding="utf-8").splitlines()
    for name in earlier:
        if name and "/" not in name and name not in (".", "..", MARKER):
            (out / name).unlink(missing_ok=True)  # a symlink: the link goes, not its target
    marker.unlink(missing_ok=True)
    return io.TextIOWrapper(new_file(marker), encoding="utf-8")


def _write(out: Path, name: str, data: bytes, written: TextIO) -> None:
    """A new file, never through a symlink (O_EXCL), listed in the marker first."""
    written.write(name + "\n")
    written.flush()
    with new_file(out / name) as fh:
        fh.write(data)


def _page(
    out: Path, number: int, rows: list[dict[str, object]], stamp: str, written: TextIO
) -> str:
    name = f"page-{number:04d}.html"
    html = _INDEX.render(rows=rows, counts={}, total=0, pages=[], date=stamp,
                         fit_script=_FIT_FRAMES, fit_hash=_FIT_HASH)
    _write(out, name, html.encode("utf-8"), written)
    return name


def _file_part(email: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", email)[:80] or "message"


# Sizes each message's frame to its content, so the HTML pane has no scroll bar of its own
# that hides the end of the mail (a frame cannot size itself in CSS).  It reads the frame's
# document, which needs the frame's allow-same-origin; the frame still runs no script.
_FIT_FRAMES = """
const fit = (frame) => {
  const doc = frame.contentDocument;
  if (!doc || !doc.documentElement) return;
  frame.style.height = "0px";
  frame.style.height = doc.documentElement.scrollHeight + "px";
};
const frames = Array.from(document.querySelectorAll("iframe"));
for (const frame of frames) {
  frame.addEventListener("load", () => fit(frame));
  fit(frame);
}
addEventListener("resize", () => frames.forEach(fit));
"""
_FIT_HASH = base64.b64encode(hashlib.sha256(_FIT_FRAMES.encode()).digest()).decode()

# The page shows strangers' data: autoescaped, and a CSP that allows no script but the one
# above (by its hash) and no remote resource; each message's HTML sits in a sandboxed srcdoc
# frame without allow-scripts, which inherits that CSP as well.
_INDEX = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{{ fit_hash }}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailer preview{% if total %}: {{ total }} entries{% endif %}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
table.summary td, table.summary th { padding: .2rem .8rem; text-align: left; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: 1rem 0;
          padding: .8rem 1rem; }
h2 { font-size: 1.05rem; margin: 0 0 .4rem; }
.meta { color: #555; font-size: .9rem; margin: 0 0 .6rem; }
.status { display: inline-block; margin-left: .4rem; padding: 0 .5rem; border-radius: 4px;
          font-size: .85rem; }
.s-new { background: #d8f5dd; }
.s-already-mailed, .s-already-queued, .s-duplicate { background: #eee; }
.s-rejected, .s-render-error, .s-failed-before { background: #fbd9d9; }
.s-suppressed { background: #fde8c8; } .s-needs-review { background: #fff3b0; }
.side { display: flex; flex-wrap: wrap; gap: 1rem; }
.side > * { flex: 1 1 420px; min-width: 0; }
iframe { width: 100%; height: 640px; border: 1px solid #ccc; background: #fff; display: block; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: .6rem;
      border: 1px solid #ccc; background: #fff; font-size: .85rem; }
</style>
</head>
<body>
<h1>Preview: what a send would do</h1>
<p class="meta">A dry run, written {{ date }}: writing this page sent nothing and recorded
nothing. The <code>.eml</code> files beside it are the messages a send would deliver.</p>
{% if not counts %}
<p class="meta"><a href="index.html">Summary and entries 1-{{ rows[0].number - 1 }}</a></p>
{% else %}
<table class="summary">
<tr><th>status</th><th>entries</th></tr>
{% for status, count in counts.items() %}
<tr><td><span class="status s-{{ status.value | replace(' ', '-') }}">{{ status.value }}</span></td>
<td>{{ count }}</td></tr>
{% endfor %}
<tr><th>total</th><th>{{ total }}</th></tr>
</table>
{% if pages %}
<p class="meta">Entries 1-{{ rows | length }} are below; the others, {{ rows | length }} a page:
{% for page in pages %}<a href="{{ page }}">{{ loop.index + 1 }}</a> {% endfor %}</p>
{% endif %}
{% endif %}
{% for row in rows %}
{% set item = row.item %}
<section id="entry-{{ row.number }}">
<h2>{{ row.number }}.
{% if item.name %}{{ item.name }} {% endif %}
{% if item.email %}&lt;{{ item.email }}&gt;{% else %}(no address){% endif %}
<span class="status s-{{ item.status.value | replace(' ', '-') }}">{{ item.status.value }}</span>
</h2>
<p class="meta">from {{ item.source }}
{% if item.draft %}
 &middot; language {{ item.draft.lang }}
{% if item.draft.lang_why %} ({{ item.draft.lang_why }}){% endif %}
 &middot; <a href="{{ row.eml }}">{{ row.eml }}</a>
{% endif %}
{% if item.reason %} &middot; {{ item.reason }}{% endif %}
</p>
{% if item.draft %}
<p class="meta">Subject: <strong>{{ item.draft.subject }}</strong></p>
<div class="side">
<iframe sandbox="allow-same-origin" title="HTML part for {{ item.email }}"
        srcdoc="{{ item.draft.html }}"></iframe>
<pre>{{ item.draft.text }}</pre>
</div>
{% endif %}
</section>
{% endfor %}
<script>{{ fit_script | safe }}</script>
</body>
</html>
"""
)
