"""Business-card OCR: accuracy on generated and real cards, speed of the worker pool.

    python bench/bench_ocr.py [--clean 16] [--photo 16] [--shared ../shared/cards]

Reads every card twice, once in this process with one multi-threaded engine
(the baseline) and once with the process pool of single-threaded engines
(what `iter_cards` does), then once more from the cache.  Accuracy is exact
match against the ground truth: the generated cards' own, and MANIFEST.json
for the real photos.  Prints a Markdown table for docs/benchmarks.md.
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

from cardgen import make_cards  # noqa: E402

from mailer.contacts.cards import scan_cards  # noqa: E402
from mailer.contacts.extract import CardFields, extract  # noqa: E402


@dataclass(frozen=True)
class Truth:
    path: Path
    name: str
    emails: tuple[str, ...]
    region: str


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
        self.names_found += fields.name.value == truth.name
        self.review += fields.needs_review


def shared_truths(folder: Path) -> list[Truth]:
    manifest = json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    return [
        Truth(
            folder / card["file"],
            card["name"] or "",
            tuple(card["emails"]),
            "BR" if card["language"] == "pt" else "GB",
        )
        for card in manifest["cards"]
    ]


def timed_scan(truths: Sequence[Truth], cache: Path, workers: int) -> tuple[float, list]:
    start = time.perf_counter()
    scans = list(scan_cards([t.path for t in truths], cache_dir=cache, workers=workers))
    return time.perf_counter() - start, scans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=int, default=16)
    parser.add_argument("--photo", type=int, default=16)
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
        if (args.shared / "MANIFEST.json").is_file():
            sets["real photos"] = shared_truths(args.shared)
        everything = [t for truths in sets.values() for t in truths]

        cores = os.cpu_count() or 1
        base_time, _ = timed_scan(everything, work / "cache-1", workers=1)
        pool_time, scans = timed_scan(everything, work / "cache-2", workers=cores)
        cached_time, _ = timed_scan(everything, work / "cache-2", workers=cores)

        by_path = {t.path: t for t in everything}
        scores = {label: Score() for label in sets}
        misses = []
        for truths_label, truths in sets.items():
            for truth in truths:
                scan = next(s for s in scans if s.source == f"{truth.path}#1")
                fields = extract(scan.lines, region=by_path[truth.path].region)
                scores[truths_label].add(truth, fields)
                if fields.name.value != truth.name or not set(truth.emails) <= {
                    e.value for e in fields.emails
                }:
                    misses.append((truth, fields))

    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n = len(everything)
    print(f"{n} cards, {cores} cores\n")
    print("| set | cards | exact e-mail | exact name | flagged for review |")
    print("|---|---|---|---|---|")
    for label, s in scores.items():
        print(
            f"| {label} | {s.cards} | {s.emails_found}/{s.emails} "
            f"({100 * s.emails_found / max(s.emails, 1):.0f} %) | {s.names_found}/{s.names} "
            f"({100 * s.names_found / max(s.names, 1):.0f} %) | {s.review} |"
        )
    print("\n| run | wall time | per card | vs baseline |")
    print("|---|---|---|---|")
    for label, seconds in (
        (f"1 process, {cores} onnxruntime threads (baseline)", base_time),
        (f"{cores} worker processes x 1 thread", pool_time),
        ("rerun from the cache", cached_time),
    ):
        print(f"| {label} | {seconds:.1f} s | {seconds / n:.2f} s | {seconds / base_time:.2f} |")
    print(f"\npeak RSS: main process {self_peak:.0f} MiB, largest worker {child_peak:.0f} MiB")
    if misses:
        print("\nmisses (truth -> read):")
        for truth, fields in misses:
            print(
                f"  {truth.path.name}: {truth.name!r} {truth.emails} -> "
                f"{fields.name.value!r} {[e.value for e in fields.emails]}"
            )


if __name__ == "__main__":
    main()
