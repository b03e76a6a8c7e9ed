"""Business-card OCR: accuracy on the held-out and the in-sample cards, speed of the pool.

    python bench/bench_ocr.py [--held-out 48] [--batch 30] [--clean 0] [--photo 0]
                              [--shared ../shared/cards]

Accuracy: every card is read once (pool of workers) and extracted with its QR codes.
The held-out set (`cardgen.make_held_out`: many layouts, name styles and countries,
a third with QR codes) is what the extractor is tuned on; ../shared/cards is reported
as in-sample.  A name counts when name and honorific are both exact.

Speed: a batch of `--batch` photos (the real ones first, then held-out photos) is read
once in this process with one multi-threaded engine (the baseline), once with the
process pool of single-threaded engines (what `iter_cards` does; model loading
included), then once more from the cache.  Prints Markdown for docs/benchmarks.md.
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

from cardgen import make_cards, make_held_out  # noqa: E402

from mailer.contacts.extract import CardFields, extract  # noqa: E402
from mailer.contacts.qr import parse_payloads  # noqa: E402
from mailer.contacts.scans import CardScan, scan_cards  # noqa: E402


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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
