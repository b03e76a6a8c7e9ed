"""The one plan over many contacts: duplicate merging's cost and flat memory.

    python bench/bench_plan.py                      # 1,000 and 100,000 contacts
    python bench/bench_plan.py --sizes 1000 20000

Writes a CSV of synthetic contacts in which every tenth address comes back
later in the file with more fields (so the merge has to replace an earlier
record), and runs each case in a fresh subprocess, so the peak RSS
(`ru_maxrss`) belongs to that case alone:

- stream: `iter_contacts`, counting (the baseline: reading without merging);
- merged: `contacts.dedupe.merged` over the same stream (every duplicate folded
  into its person, through the temporary SQLite store);
- plan: `plan.plan_files` without a journal: merged, and every message rendered,
  as `preview` and `send` do.

Flat memory means a case's peak RSS does not grow with the file.  Times leave
out interpreter start-up and imports.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("stream", "merged", "plan")


def write_contacts(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["Name", "E-mail Address", "Company", "Mobile Phone"])
        for i in range(n):
            if i % 10 == 9:  # the address of i - 5, now with a name and a company
                writer.writerow([f"Person {i - 5}", f"p{i - 5}@example.org", "Example GmbH",
                                 f"+49 171 {1000000 + i}"])
            else:
                writer.writerow(["", f"p{i}@example.org", "", ""])


def counter(case: str) -> Callable[[Path], int]:
    from mailer.campaign.plan import plan_files
    from mailer.compose.message import Composer
    from mailer.compose.profile import load_profile
    from mailer.contacts import iter_contacts
    from mailer.contacts.dedupe import merged

    if case == "stream":
        return lambda path: sum(1 for _ in iter_contacts([path]))
    if case == "merged":
        return lambda path: sum(1 for _ in merged(iter_contacts([path])))
    composer = Composer(load_profile(ROOT / "profile.example.toml"))
    return lambda path: sum(1 for _ in plan_files([path], composer, None))


def measure(case: str, path: Path) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, __file__, "--child", case, str(path)],
                            stdout=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{case} on {path} failed")
    return {**json.loads(out), "rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, path = args.child
        count_of = counter(case)
        start = time.perf_counter()
        count = count_of(Path(path))
        print(json.dumps({"count": count, "seconds": time.perf_counter() - start}))
        return
    print("| contacts | stream /s | RSS MB | merged /s (vs stream) | RSS MB "
          "| plan /s (vs stream) | RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rss: dict[str, list[float]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"contacts-{n}.csv"
            write_contacts(path, n)
            got = {case: measure(case, path) for case in CASES}
            rate = {case: got[case]["count"] / got[case]["seconds"] for case in CASES}
            for case in CASES:
                rss[case].append(got[case]["rss_mb"])
            print(f"| {n:,} | {rate['stream']:,.0f} | {got['stream']['rss_mb']:.0f} | "
                  f"{rate['merged']:,.0f} ({rate['merged'] / rate['stream']:.2f}x) | "
                  f"{got['merged']['rss_mb']:.0f} | "
                  f"{rate['plan']:,.0f} ({rate['plan'] / rate['stream']:.2f}x) | "
                  f"{got['plan']['rss_mb']:.0f} |")
    if len(args.sizes) > 1:
        print("\npeak RSS, largest / smallest size: " + ", ".join(
            f"{case} {values[-1] / values[0]:.2f}" for case, values in rss.items()))


if __name__ == "__main__":
    main()
