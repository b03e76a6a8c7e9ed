"""Business-card OCR: accuracy on the held-out and the in-sample cards, speed of the pool.

    python bench/bench_ocr.py [--held-out 48] [--batch 30] [--clean 0] [--photo 0]
                              [--shared ../shared/cards] [--pages]

Accuracy: every card is read once (pool of workers) and extracted with its QR codes.
The held-out set (`cardgen.make_held_out`: many layouts, name styles and countries,
a third with QR codes) is what the extractor is tuned on; ../shared/cards is reported
as in-sample.  A name counts when name and honorific are both exact.

Speed: a batch of `--batch` photos (the real ones first, then held-out photos) is read
once in this process with one multi-threaded engine (the baseline), once with the
process pool of single-threaded engines (what `iter_cards` does; model loading
included), then once more from the cache.  Prints Markdown for docs/benchmarks.md.

Pages (`--pages`): flatbed pages (light and dark lids, 200-600 dpi, 2-12 cards, each a
little crooked), phone photos of several cards and a duplex PDF, composed by cardgen
with seeds apart from the tests': every card found exactly once, names, no stray
contact; then a page of 8 cards against the same 8 cards as 8 images (the baseline),
both from a fresh engine (model loading included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

from cardgen import PageSpec, held_out_cards, make_cards, make_duplex, make_held_out  # noqa: E402
from cardgen import make_page as compose_page  # noqa: E402

from mailer.contacts import scans as scans_module  # noqa: E402
from mailer.contacts.extract import CardFields, extract  # noqa: E402
from mailer.contacts.qr import parse_payloads  # noqa: E402
from mailer.contacts.scans import CardScan, read_cards, scan_cards  # noqa: E402

PAGES = (  # (spec, photo): the held-out pages, seeds 7100 + i
    (PageSpec(8, "light", 300), False),
    (PageSpec(10, "light", 200), False),
    (PageSpec(4, "dark", 300), False),
    (PageSpec(12, "dark", 600, 3), False),
    (PageSpec(6, "light", 400, 3), False),
    (PageSpec(2, "light", 300, 1, 4), False),
    (PageSpec(3, "dark", 300, 2, 8), True),
    (PageSpec(4, "dark", 300, 2, 8), True),
)


@dataclass(frozen=True)
class Truth:
    path: Path
    name: str
    emails: tuple[str, ...]
    region: str
    honorific: str = ""
    style: str = ""
    phones: tuple[str, ...] = ()


@dataclass
class Score:
    cards: int = 0
    emails: int = 0
    emails_found: int = 0
    names: int = 0
    names_found: int = 0
    review: int = 0

    def add(self, truth: Truth, fields: CardFields) -> None:
        found = {e.value for e in fields.emails}
        self.cards += 1
        self.emails += len(truth.emails)
        self.emails_found += sum(1 for e in truth.emails if e in found)
        self.names += 1
        self.names_found += name_right(truth, fields)
        self.review += fields.needs_review


def name_right(truth: Truth, fields: CardFields) -> bool:
    return fields.name.value == truth.name and fields.honorific.value == truth.honorific


def shared_truths(folder: Path) -> list[Truth]:
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    truths = []
    for card in manifest["cards"]:
        printed = card["name"] or ""
        honorific = printed.split()[0] if printed.startswith("Dr. ") else ""
        truths.append(
            Truth(
                folder / card["file"],
                printed.removeprefix(honorific).strip(),
                tuple(card["emails"]),
                "BR" if card["language"] == "pt" else "GB",
                honorific,
            )
        )
    return truths


def timed_scan(truths: Sequence[Truth], cache: Path, workers: int) -> tuple[float, list[CardScan]]:
    start = time.perf_counter()
    scans = list(scan_cards([t.path for t in truths], cache_dir=cache, workers=workers))
    return time.perf_counter() - start, scans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", type=int, default=48)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--clean", type=int, default=0)
    parser.add_argument("--photo", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared" / "cards")
    parser.add_argument("--pages", action="store_true", help="pages of several cards instead")
    args = parser.parse_args()
    if args.pages:
        bench_pages()
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets: dict[str, list[Truth]] = {}
        for label, count, photo, seed in (
            ("synthetic clean", args.clean, False, 101),
            ("synthetic photo", args.photo, True, 202),
        ):
            if count:
                cards = make_cards(work / label.replace(" ", "-"), count, photo=photo, seed=seed)
                sets[label] = [Truth(p, t.name, (t.email,), "DE") for p, t in cards]
        if args.held_out:
            held = make_held_out(work / "held-out", args.held_out)
            sets["held-out (tuned on)"] = [
                Truth(p, t.name, (t.email,), "DE", t.honorific, t.style, t.phones) for p, t in held
            ]
        if (args.shared / "MANIFEST.json").is_file():
            sets["../shared/cards (in-sample)"] = shared_truths(args.shared)
        everything = [t for truths in sets.values() for t in truths]

        cores = os.cpu_count() or 1
        scans = {
            s.source: s for s in scan_cards([t.path for t in everything], cache_dir=work / "c0")
        }
        scores = {label: Score() for label in sets}
        styles: dict[str, Score] = {}
        misses = []
        for label, truths in sets.items():
            for truth in truths:
                scan = scans[f"{truth.path}#1"]
                fields = extract(scan.lines, region=truth.region, codes=parse_payloads(scan.codes))
                scores[label].add(truth, fields)
                if truth.style:
                    styles.setdefault(truth.style, Score()).add(truth, fields)
                if not name_right(truth, fields) or not set(truth.emails) <= {
                    e.value for e in fields.emails
                }:
                    misses.append((truth, fields))

        real = sets.get("../shared/cards (in-sample)", [])
        photos = [*real, *(t for t in everything if t.path.suffix == ".jpg" and t not in real)]
        photos = photos[: args.batch]
        if photos:
            base_time, _ = timed_scan(photos, work / "cache-1", workers=1)
            base_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            pool_time, _ = timed_scan(photos, work / "cache-2", workers=cores)
            cached_time, _ = timed_scan(photos, work / "cache-2", workers=cores)

    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"accuracy: {len(everything)} cards; speed: {len(photos)} photos, {cores} cores\n")
    print("| set | cards | exact e-mail | exact name | flagged for review |")
    print("|---|---|---|---|---|")
    for label, s in [*scores.items(), *((f"held-out: {k}", v) for k, v in styles.items())]:
        print(
            f"| {label} | {s.cards} | {s.emails_found}/{s.emails} "
            f"({100 * s.emails_found / max(s.emails, 1):.0f} %) | {s.names_found}/{s.names} "
            f"({100 * s.names_found / max(s.names, 1):.0f} %) | {s.review} |"
        )
    n = len(photos)
    for truth, fields in misses:
        print(
            f"  miss {truth.path.name} [{truth.style}]: {truth.honorific!r} {truth.name!r} "
            f"{truth.emails} -> {fields.honorific.value!r} {fields.name.value!r} "
            f"{[e.value for e in fields.emails]}"
        )
    if not photos:
        return
    print("\n| run | wall time | per card | vs baseline | peak RSS |")
    print("|---|---|---|---|---|")
    for label, seconds, peak in (
        (f"1 process, {cores} onnxruntime threads (baseline)", base_time, f"{base_peak:.0f} MiB"),
        (f"{cores} worker processes x 1 thread", pool_time, f"{child_peak:.0f} MiB per worker"),
        ("rerun from the cache", cached_time, ""),
    ):
        print(
            f"| {label} | {seconds:.1f} s | {seconds / n:.3f} s | {seconds / base_time:.2f} "
            f"| {peak} |"
        )


def bench_pages() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files, truths = [], []
        for i, (spec, photo) in enumerate(PAGES):
            path = work / f"page-{i}.{'jpg' if photo else 'png'}"
            truths.append(compose_page(path, spec, 7100 + i, photo=photo))
            files.append(path)
        duplex = work / "duplex.pdf"
        sides = make_duplex(duplex, 6, 7200)
        files.append(duplex)
        truths.append([truth for truth, _ in sides])
        cards = list(read_cards(files, region="DE", cache_dir=work / "c"))
        print("| page | cards | found once | e-mails | names | stray contacts |")
        print("|---|---|---|---|---|---|")
        total = [0, 0, 0, 0, 0]
        for path, truth in zip(files, truths, strict=True):
            read = [f for source, f, _ in cards if source.startswith(f"{path}#") and f]
            found = len(read) == len(truth)
            emails = {f.email.value for f in read}
            names = {f.name.value for f in read}
            right_emails = sum(t.email in emails for t in truth)
            right_names = sum(t.name in names for t in truth)
            # a contact for no card: neither its address nor its name is any card's
            stray = sum(
                f.email.value not in {t.email for t in truth}
                and f.name.value not in {t.name for t in truth}
                for f in read
            )
            print(f"| {path.name} | {len(truth)} | {'yes' if found else f'no ({len(read)})'} "
                  f"| {right_emails} | {right_names} | {stray} |")  # fmt: skip
            for k, v in enumerate((len(truth), found, right_emails, right_names, stray)):
                total[k] += v
        n = total[0]
        print(f"| all | {n} | {total[1]}/{len(files)} pages | {total[2]} "
              f"({100 * total[2] / n:.0f} %) | {total[3]} ({100 * total[3] / n:.0f} %) "
              f"| {total[4]} |\n")  # fmt: skip

        page = work / "eight.png"
        compose_page(page, PageSpec(8, "light", 300), 7300)
        singles = []
        for i, (image, _) in enumerate(held_out_cards(8, 7300)):
            singles.append(work / f"single-{i}.png")
            image.save(singles[-1])
        timings = []
        for label, paths in (("8 images of one card (baseline)", singles), ("1 page of 8", [page])):
            scans_module._engine = None  # model loading included
            start = time.perf_counter()
            count = len(list(scan_cards(paths, cache_dir=work / label[:3])))
            timings.append((label, time.perf_counter() - start, count))
        base = timings[0][1] / timings[0][2]
        print(f"| run ({os.cpu_count()} cores) | cards | wall time | per card | vs baseline |")
        print("|---|---|---|---|---|")
        for label, seconds, count in timings:
            print(f"| {label} | {count} | {seconds:.1f} s | {seconds / count:.2f} s "
                  f"| {seconds / count / base:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
