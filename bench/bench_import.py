"""Contact import speed and memory, against a plain parsing loop measured in the same run.

    python bench/bench_import.py                    # 1,000 and 100,000 contacts
    python bench/bench_import.py --sizes 1000 20000 --markdown

For each size it writes one CSV and one vCard file of synthetic contacts
(example.com/example.org addresses, umlauts, two addresses per card, one
preferred) and runs every case in a fresh subprocess, so the peak RSS
(`ru_maxrss` from `os.wait4`) belongs to that case alone:

- baseline: `csv.reader` / `vobject.readComponents` counting records, no
  decoding quirks, validation or sanitising;
- validated: the same loop plus email-validator on every address, the least
  any importer that checks addresses has to do;
- stream: `iter_contacts` (validated and sanitised, not deduplicated);
- load: `load_contacts` (deduplicated; it keeps the contacts it returns).

Flat memory means the streaming case's peak RSS does not grow with the file.
Times exclude interpreter start-up and imports.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST = [("Jürgen", "juergen"), ("Zoë", "zoe"), ("Ada", "ada"), ("Łukasz", "lukasz")]
LAST = [("Müller", "mueller"), ("Ünal", "uenal"), ("Weiß", "weiss"), ("Nowak", "nowak")]
CASES = ("baseline", "validated", "stream", "load")


def people(n: int) -> Iterator[tuple[str, str, str, str, str]]:
    rnd = random.Random(1)
    for i in range(n):
        (first, first_ascii), (last, last_ascii) = rnd.choice(FIRST), rnd.choice(LAST)
        email = f"{first_ascii}.{last_ascii}.{i}@example.org"
        yield first, last, email, f"{last} & Söhne GmbH", f"+49 171 {1000000 + i}"


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["First Name", "Last Name", "E-mail Address", "Company", "Mobile Phone"])
        writer.writerows(people(n))


def write_vcard(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        for first, last, email, org, phone in people(n):
            fh.write(
                f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{first} {last}\r\nN:{last};{first};;;\r\n"
                f"EMAIL;TYPE=INTERNET:{email}\r\n"
                f"EMAIL;TYPE=INTERNET,PREF:{email.replace('@example.org', '@example.com')}\r\n"
                f"ORG:{org};Vertrieb\r\nTEL;TYPE=CELL:{phone}\r\nEND:VCARD\r\n"
            )


def counter(case: str, suffix: str) -> Callable[[Path], int]:
    """The function that counts what one case reads, with its imports done, so that
    the timed part is the reading alone (runs in the child process)."""
    if case in ("stream", "load"):
        from mailer.contacts import iter_contacts, load_contacts

        if case == "stream":
            return lambda path: sum(1 for _ in iter_contacts([path]))
        return lambda path: load_contacts([path]).read
    import vobject
    from email_validator import validate_email

    def check(address: str) -> None:
        if case == "validated":
            validate_email(address, check_deliverability=False)

    def count_csv(path: Path) -> int:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = csv.reader(fh)
            next(rows)
            for count, row in enumerate(rows, 1):  # noqa: B007
                check(row[2])
            return count

    def count_vcards(path: Path) -> int:
        with path.open(encoding="utf-8") as fh:
            for count, card in enumerate(vobject.readComponents(fh), 1):  # noqa: B007
                for email in card.contents.get("email", []):
                    check(email.value)
            return count

    return count_csv if suffix == ".csv" else count_vcards


def measure(case: str, path: Path) -> dict[str, float]:
    """Run one case in a fresh interpreter; its count, seconds and peak RSS in MB."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", case, str(path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{case} on {path} failed with exit code {proc.returncode}")
    result = json.loads(out)
    return {**result, "rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--workdir", type=Path, help="keep the generated files here")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, path = args.child
        count_of = counter(case, Path(path).suffix)
        start = time.perf_counter()
        count = count_of(Path(path))
        print(json.dumps({"count": count, "seconds": time.perf_counter() - start}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = []
        for kind, writer in (("csv", write_csv), ("vcf", write_vcard)):
            for n in args.sizes:
                path = workdir / f"contacts-{n}.{kind}"
                writer(path, n)
                results = {case: measure(case, path) for case in CASES}
                for case, r in results.items():
                    if r["count"] != n:
                        raise SystemExit(f"{case} read {r['count']} of {n} contacts from {path}")
                rows.append(report_row(kind, n, results))
                print(f"done: {kind} {n}", file=sys.stderr)
    print_table(rows)


def report_row(kind: str, n: int, results: dict[str, dict[str, float]]) -> list[str]:
    """Rates with their ratio to the plain loop (and, for mailer, to the validated loop)."""
    rate = {case: n / r["seconds"] for case, r in results.items()}
    cells = [kind, f"{n:,}", f"{rate['baseline']:,.0f}", f"{results['baseline']['rss_mb']:.0f}"]
    for case in CASES[1:]:
        ratios = f"{rate[case] / rate['baseline']:.2f}x"
        if case != "validated":
            ratios += f" / {rate[case] / rate['validated']:.2f}x"
        cells += [f"{rate[case]:,.0f} ({ratios})", f"{results[case]['rss_mb']:.0f}"]
    return cells


def print_table(rows: list[list[str]]) -> None:
    header = ["format", "contacts"]
    for case in CASES:
        header += [f"{case} contacts/s", "peak RSS MB"]
    lines = [header, ["---"] * len(header), *rows]
    render: Callable[[list[str]], str] = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
    print("\n".join(render(line) for line in lines))


if __name__ == "__main__":
    main()
