#!/usr/bin/env python3
"""Fixed cost of a send: this checkout against a baseline commit, in one run.

    python bench/bench_fixed.py --baseline REF [-n 300 -n 3000] [--runs 5] [--rtt-ms 20]

The command is the one bench_send.py times (`mailer send CSV --profile
profile.example.toml --yes --rate none --concurrency 8`, a fresh MAILER_HOME each
run) against one sink on loopback for all runs: the shared smtp_sink.py (plain
SMTP, no login), or with --rtt-ms R the PIPELINING sink of bench_send.py with
STARTTLS + AUTH behind the shared latency_proxy.py.  The two trees take turns
run by run (REF is extracted with `git archive`; each runs as `python -m mailer`
with PYTHONPATH set to its tree), so a drifting load weighs on both alike.

Per run: the whole command's wall time, the time from its start to the first
message the sink took (the sink's --log stamps every message) and from the last
one to the command's exit.  Medians, and after / before ratios.

Use an interpreter with mailer's dependencies and aiosmtpd, mailer itself not
installed editable (an editable install's import hook adds start-up to both):

    python3 -m venv /tmp/fixedenv && /tmp/fixedenv/bin/pip install . aiosmtpd
    /tmp/fixedenv/bin/python bench/bench_fixed.py --baseline d0d9881 -n 300 -n 3000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_send import PROFILE, SHARED, SINK_SHIM
from bench_startup import ROOT, extract

sys.path.insert(0, str(SHARED))
import gen_contacts  # the shared harness's contacts (after the path insert)


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], int]:
    """A helper server that prints `READY host port` once listening."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if line[:1] != ["READY"]:
        proc.kill()
        sys.exit(f"{cmd[1]} did not start")
    return proc, int(line[2])


def servers(work: Path, rtt_ms: float) -> tuple[list[subprocess.Popen[str]], dict[str, str]]:
    """The sink (and the latency proxy) and the environment a send needs to reach it."""
    log = work / "sink.jsonl"
    log.touch()
    if not rtt_ms:
        sink, port = start([sys.executable, str(SHARED / "smtp_sink.py"), "--port", "0",
                            "--max-seconds", "86400", "--log", str(log)])
        return [sink], {"MAILER_SMTP_PORT": str(port), "MAILER_SMTP_SECURITY": "none"}
    shim = work / "pipelining_sink.py"
    shim.write_text(SINK_SHIM.format(shared=str(SHARED / "smtp_sink.py")))
    cert = work / "sink-cert.pem"
    sink, port = start([sys.executable, str(shim), "--port", "0", "--max-seconds", "86400",
                        "--starttls", "--auth", "--cert-out", str(cert), "--log", str(log)])
    proxy, proxied = start([sys.executable, str(SHARED / "latency_proxy.py"), "--target-port",
                            str(port), "--rtt-ms", str(rtt_ms), "--max-seconds", "86400"])
    return [sink, proxy], {"MAILER_SMTP_PORT": str(proxied), "MAILER_SMTP_SECURITY": "starttls",
                           "MAILER_SMTP_USERNAME": "bench", "MAILER_SMTP_PASSWORD": "bench",
                           "SSL_CERT_FILE": str(cert)}


def one_send(tree: Path, csv: Path, n: int, env: dict[str, str], log: Path) -> tuple[float, ...]:
    """(wall, start to first message, last message to exit) in seconds."""
    home = tempfile.mkdtemp(prefix="mailer-home-", dir=log.parent)
    offset = log.stat().st_size
    began = time.time()
    subprocess.run([sys.executable, "-m", "mailer", "send", str(csv), "--profile", str(PROFILE),
                    "--yes", "--rate", "none", "--concurrency", "8"], cwd=log.parent, check=True,
                   capture_output=True,
                   env={**os.environ, **env, "PYTHONPATH": str(tree), "MAILER_HOME": home,
                        "MAILER_SMTP_HOST": "127.0.0.1", "MAILER_ENV_FILE": ""})
    ended = time.time()
    time.sleep(0.05)  # the sink writes its last line before its last reply; let it land
    with log.open() as fh:
        fh.seek(offset)
        stamps = [json.loads(line)["time"] for line in fh if line.strip()]
    if len(stamps) != n:
        sys.exit(f"the sink took {len(stamps)} messages, not {n}")
    return ended - began, min(stamps) - began, ended - max(stamps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="git ref measured as 'before'")
    ap.add_argument("-n", type=int, action="append", help="contacts (repeatable) [300, 3000]")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rtt-ms", type=float, default=0.0,
                    help="STARTTLS + AUTH through a proxy adding this round trip [0: bare]")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as tmp:
        work = Path(tmp)
        trees = {"before": extract(a.baseline, work), "after": ROOT}
        procs, env = servers(work, a.rtt_ms)
        try:
            where = f"{a.rtt_ms:g} ms round trip, STARTTLS + AUTH" if a.rtt_ms else "bare loopback"
            print(f"before = {a.baseline}, after = this checkout; {where}; median of {a.runs}\n")
            print("| N | wall s before -> after (ratio) | to the first message s (ratio) "
                  "| last message to exit s (ratio) |")
            print("| --- | --- | --- | --- |")
            for n in a.n or [300, 3000]:
                csv = work / f"contacts-{n}.csv"
                gen_contacts.write_csv(str(csv), n)
                runs: dict[str, list[tuple[float, ...]]] = {name: [] for name in trees}
                for _ in range(a.runs):
                    for name, tree in trees.items():
                        runs[name].append(one_send(tree, csv, n, env, work / "sink.jsonl"))
                cells = []
                for column in range(3):
                    b, f = (statistics.median(r[column] for r in runs[name]) for name in trees)
                    cells.append(f"{b:.3f} -> {f:.3f} ({f / b:.2f}x)")
                print(f"| {n:,} | {' | '.join(cells)} |", flush=True)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
