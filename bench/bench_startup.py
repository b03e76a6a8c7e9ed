"""Start-up cost of the commands that should be instant, before and after.

    python bench/bench_startup.py                  # this checkout vs. REF (default 9eb5c85)
    python bench/bench_startup.py --baseline REF --runs 7

Extracts REF with `git archive` into a temporary folder and runs, for both
trees, `python -X importtime -m mailer CMD` for `--help`, `status` and
`campaigns` against one small journal (one campaign, so status and campaigns
print a table).  Reported per command: modules imported, the sum of their
self import times (`-X importtime`), and the median wall time of the whole
process; ratios are after / before, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (("--help",), ("status",), ("campaigns",))
HEAVY = ("jinja2", "vobject", "aiosmtplib", "aiosmtpd", "email_validator", "phonenumbers",
         "charset_normalizer", "dateparser", "asyncio", "rich")


def extract(ref: str, into: Path) -> Path:
    archive = into / "base.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "base", filter="data")
    return into / "base"


def make_journal(tree: Path, home: Path) -> None:
    code = ("from pathlib import Path; from mailer.journal import Journal; "
            "from tests.smtpd import make_draft; "
            "j = Journal(Path(__import__('sys').argv[1]) / 'journal.sqlite3'); "
            "j.enqueue('event', [make_draft(f'p{i}@example.com') for i in range(20)]); j.close()")
    subprocess.run([sys.executable, "-c", code, str(home)], cwd=tree, check=True,
                   env={**os.environ, "PYTHONPATH": str(tree)})


@dataclass(frozen=True)
class Measure:
    modules: int
    self_ms: float
    wall_ms: float
    heavy: list[str]


def measure(tree: Path, home: Path, command: tuple[str, ...], runs: int) -> Measure:
    env = {**os.environ, "PYTHONPATH": str(tree), "MAILER_HOME": str(home), "COLUMNS": "120"}
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mailer", *command],
                              cwd=home, env=env, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - start)
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    modules = [(int(r[0].split(":")[1]), r[2].strip()) for r in rows[1:]]
    return Measure(len(modules), sum(us for us, _ in modules) / 1000,
                   statistics.median(walls) * 1000,
                   sorted({name for _, name in modules if name in HEAVY}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="9eb5c85", help="git ref measured as 'before'")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": extract(args.baseline, Path(tmp)), "after": ROOT}
        print(f"before = {args.baseline}, after = this checkout; median of {args.runs} runs\n")
        print("| command | modules before -> after | import self-time ms before -> after "
              "| wall ms before -> after (ratio) | heavy packages loaded before -> after |")
        print("| --- | --- | --- | --- | --- |")
        for command in COMMANDS:
            result = {}
            for name, tree in trees.items():
                home = Path(tmp) / f"home-{name}"
                home.mkdir(exist_ok=True)
                if not (home / "journal.sqlite3").exists():
                    make_journal(tree, home)
                result[name] = measure(tree, home, command, args.runs)
            b, a = result["before"], result["after"]
            print(f"| `mailer {' '.join(command)}` | {b.modules} -> {a.modules} | "
                  f"{b.self_ms:.0f} -> {a.self_ms:.0f} | "
                  f"{b.wall_ms:.0f} -> {a.wall_ms:.0f} ({a.wall_ms / b.wall_ms:.2f}x) | "
                  f"{', '.join(b.heavy) or '-'} -> {', '.join(a.heavy) or '-'} |")


if __name__ == "__main__":
    main()
