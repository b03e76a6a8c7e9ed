"""Preview and import keep flat memory at 100k entries: each is run once in a fresh
subprocess and its peak RSS (VmHWM) must stay under a bound that the whole-list
versions broke many times over (preview of 100k cards took 2.2 GB before issue 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ENTRIES = 100_000
UNIQUE = 2_000  # distinct addresses: the .eml files a preview writes (disk stays small)
BOUND_MB = 150  # measured: ~45 MB; the interpreter with every library is most of it

# VmHWM, not getrusage: ru_maxrss survives exec, so a child of a big pytest process
# would report its parent's peak.
RUN = """
import json, sys
from pathlib import Path
from mailer.cli import main
from mailer.contacts import iter_contacts
try:
    if sys.argv[1] == "import":  # the stage preview and send stream from
        print(sum(1 for _ in iter_contacts([Path(sys.argv[2])])))
    else:
        main(sys.argv[1:], standalone_mode=False)
finally:
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    sys.stderr.write(json.dumps({"peak_mb": peak_kb / 1024}) + "\\n")
"""


def contacts_file(folder: Path) -> Path:
    """100k rows: every 2nd without an address (rejected), the rest cycling through
    UNIQUE addresses (one new each, the others duplicates)."""
    path = folder / "many.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("Name,Email,Company\n")
        for i in range(ENTRIES):
            email = f"person{(i // 2) % UNIQUE}@example.com" if i % 2 else ""
            fh.write(f"Person {i},{email},Company {i % 97}\n")
    return path


def vcard_file(folder: Path) -> Path:
    path = folder / "many.vcf"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(ENTRIES):
            fh.write(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n"
                     f"EMAIL;TYPE=INTERNET:p{i}@example.com\r\nORG:Company {i % 97}\r\n"
                     f"END:VCARD\r\n")  # fmt: skip
    return path


def peak_mb(*args: str, env: dict[str, str]) -> float:
    result = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=240
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return float(json.loads(result.stderr.strip().splitlines()[-1])["peak_mb"])


def test_preview_and_import_of_100k_entries_stay_flat(tmp_path: Path) -> None:
    path = contacts_file(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "MAILER_HOME": str(tmp_path / "home"),
           "MAILER_ENV_FILE": "", "COLUMNS": "100"}  # fmt: skip
    out = tmp_path / "preview"
    preview = peak_mb("preview", str(path), "--profile", str(PROJECT / "profile.example.toml"),
                      "--out", str(out), env=env)  # fmt: skip
    assert len(list(out.glob("*.eml"))) == UNIQUE
    pages = list(out.glob("page-*.html"))
    assert len(pages) == ENTRIES // 200 - 1
    assert max(p.stat().st_size for p in [*pages, out / "index.html"]) < 20 * 1024 * 1024
    imported = peak_mb("import", str(vcard_file(tmp_path)), env=env)
    print(f"peak RSS at {ENTRIES} entries: preview {preview:.0f} MB, import {imported:.0f} MB")
    assert preview < BOUND_MB, f"preview of {ENTRIES} entries peaked at {preview:.0f} MB"
    assert imported < BOUND_MB, f"import of {ENTRIES} entries peaked at {imported:.0f} MB"
