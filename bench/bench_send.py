#!/usr/bin/env python3
"""Sending throughput and memory of `mailer send`, as ratios against baselines
measured in the same run by the shared harness (../shared/bench/baselines.py).

Scenarios (the floors in brackets):
  rtt20     STARTTLS + AUTH, 20 ms network round trip (latency_proxy), N=300:
            mailer --concurrency 8 vs mailmerge [>= 25x], 8 pooled aiosmtplib
            connections [>= 1.6x] and one reused smtplib connection
  rtt100    the same at 100 ms round trip: mailer vs 8 pooled aiosmtplib connections
            (mailmerge and smtplib take minutes a run there; --slow adds them)
  wire      bare loopback, N=3,000: mailer vs raw-blast-k8, pre-rendered bytes
            in lock-step over 8 connections [>= 0.6x]
  tls       STARTTLS + AUTH + 20 ms per reply (sink think time), N=200: mailer vs
            mailmerge [>= 10x] and one reused smtplib connection [>= 3x]
  loopback  bare loopback, N=10,000: mailer --concurrency 8 vs mailmerge [>= 2x]
  memory    mailer alone at N=1,000 and N=100,000: peak RSS ratio [<= 1.2]

The sink offers PIPELINING (RFC 2920), as the submission servers of Gmail,
Microsoft 365, Postfix and Exim do: the harness is copied to --workdir with a
sink that adds the EHLO keyword to the shared smtp_sink.py (aiosmtpd reads
commands line by line, so it answers a pipelined group in order).  The
baselines do not pipeline, with or without it.

Set up the interpreter as ../shared/bench/README.md says, plus this project:

    python3 -m venv /tmp/benchenv
    /tmp/benchenv/bin/pip install aiosmtpd aiosmtplib mailmerge jinja2
    /tmp/benchenv/bin/pip install -e .
    /tmp/benchenv/bin/python bench/bench_send.py rtt20 rtt100 wire memory

Each scenario writes the harness's raw JSON next to its table in --workdir.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
# ../shared/bench from the checkout (a worktree one level further down: ../../shared)
SHARED = next((d / "shared" / "bench" for d in PROJECT.parents
               if (d / "shared" / "bench" / "baselines.py").is_file()),
              PROJECT.parent / "shared" / "bench")
PROFILE = PROJECT / "profile.example.toml"


def mailer_cmd(mailer: str, *, tls: bool) -> str:
    """The SENDER_CMD the harness runs; {placeholders} are filled in by it."""
    security = ("MAILER_SMTP_SECURITY=starttls MAILER_SMTP_USERNAME=bench "
                "MAILER_SMTP_PASSWORD=bench" if tls else "MAILER_SMTP_SECURITY=none")
    return (f'MAILER_HOME="$(mktemp -d)" MAILER_SMTP_HOST={{host}} MAILER_SMTP_PORT={{port}} '
            f"{security} {shlex.quote(mailer)} send {{csv}} --profile {shlex.quote(str(PROFILE))} "
            f"--yes --rate none --concurrency 8")


RTT_CASES = "mailer,mailmerge,aiosmtplib-k8,smtplib-reuse"
SCENARIOS: dict[str, dict[str, object]] = {
    "rtt20": {
        "args": ["-n", "300", "--only", RTT_CASES, "--with-baselines",
                 "--sink-args", "--starttls --auth", "--rtt-ms", "20"],
        "tls": True,
        "floors": [("mailer", "mailmerge", 300, 25.0), ("mailer", "aiosmtplib-k8", 300, 1.6),
                   ("mailer", "smtplib-reuse", 300, 0.0)],
    },
    "rtt100": {
        "args": ["-n", "300", "--only", "mailer,aiosmtplib-k8", "--with-baselines",
                 "--sink-args", "--starttls --auth", "--rtt-ms", "100"],
        "slow": RTT_CASES,
        "tls": True,
        "floors": [("mailer", "aiosmtplib-k8", 300, 0.0), ("mailer", "mailmerge", 300, 0.0),
                   ("mailer", "smtplib-reuse", 300, 0.0)],
    },
    "wire": {
        "args": ["-n", "3000", "--only", "mailer,raw-blast-k8", "--with-baselines"],
        "tls": False,
        "floors": [("mailer", "raw-blast-k8", 3000, 0.6)],
    },
    "tls": {
        "args": ["-n", "200", "--only", "mailer,mailmerge,smtplib-reuse", "--with-baselines",
                 "--sink-args", "--starttls --auth --reply-delay-ms 20"],
        "tls": True,
        "floors": [("mailer", "mailmerge", 200, 10.0), ("mailer", "smtplib-reuse", 200, 3.0)],
    },
    "loopback": {
        "args": ["-n", "10000", "--only", "mailer,mailmerge", "--with-baselines"],
        "tls": False,
        "floors": [("mailer", "mailmerge", 10000, 2.0)],
    },
    "memory": {
        "args": ["-n", "1000", "-n", "100000", "--only", "mailer", "--runs", "1"],
        "tls": False,
        "floors": [],
    },
}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


SINK_SHIM = """\
# The shared smtp_sink.py, offering PIPELINING (written by mailer's bench/bench_send.py).
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("shared_smtp_sink", {shared!r})
sink = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sink)


class PipeliningSMTP(sink.ProviderSMTP):
    async def push(self, status):
        if status == "250 HELP":  # the last line of aiosmtpd's EHLO reply
            await super().push("250-PIPELINING")
        await super().push(status)


sink.ProviderSMTP = PipeliningSMTP
sys.exit(sink.main())
"""


def harness(workdir: Path) -> Path:
    """A copy of the shared harness whose sink offers PIPELINING; its baselines.py."""
    copy = workdir / "harness"
    shutil.copytree(SHARED, copy, dirs_exist_ok=True, copy_function=shutil.copyfile)
    (copy / "smtp_sink.py").write_text(SINK_SHIM.format(shared=str(SHARED / "smtp_sink.py")))
    return copy / "baselines.py"


def measure(name: str, a: argparse.Namespace) -> dict[tuple[str, int], list[dict]]:
    """The harness's results per (case, N).  Interleaved: one run of each case
    after the other, round by round, so that a machine whose load drifts (it is
    shared) weighs on every case alike instead of on whichever ran last."""
    spec = SCENARIOS[name]
    args = [str(x) for x in spec["args"]]  # type: ignore[attr-defined]
    if a.slow and "slow" in spec:
        args[args.index("--only") + 1] = str(spec["slow"])
    at = args.index("--only") + 1
    cases = args[at].split(",")
    rounds = 1 if "--runs" in args else a.runs
    baselines = harness(Path(a.workdir))
    env = dict(os.environ, SENDER_CMD=mailer_cmd(a.mailer, tls=bool(spec["tls"])))
    results: dict[tuple[str, int], list[dict]] = {}
    for i in range(rounds):
        for case in cases:
            out = Path(a.workdir) / f"bench-send-{name}-{case}-{i + 1}.json"
            one = [*args[:at], case, *args[at + 1:]]
            if "--runs" not in one:
                one += ["--runs", "1"]
            cmd = [a.python, str(baselines), "--label", "mailer", "--json", str(out),
                   "--workdir", a.workdir, "--quiet-wait", str(a.quiet_wait), *one]
            subprocess.run(cmd, env=env, check=True)
            for r in json.loads(out.read_text()):
                results.setdefault((r["label"], r["n"]), []).append(r)
    return results


def run(name: str, a: argparse.Namespace) -> list[str]:
    spec = SCENARIOS[name]
    results = measure(name, a)
    load = os.getloadavg()[0]
    lines = [f"### {name}", "", "| case | N | msg/s (median) | runs | window msg/s | "
             "other CPU % (max) | peak RSS MB | all ok |", "|---|---|---|---|---|---|---|---|"]
    for (label, n), runs in results.items():
        each = ", ".join(f"{r['msg_s']:.1f}" for r in runs)
        lines.append(
            f"| {label} | {n} | {median(runs, 'msg_s'):.1f} | {each} | "
            f"{median(runs, 'window_msg_s'):.1f} | {max(r['other_cpu_pct'] for r in runs):.0f} | "
            f"{median(runs, 'sender_rss_mb'):.1f} | {all(r['ok'] for r in runs)} |")
    lines += ["", f"load average at the end: {load:.1f} (2 cores)", ""]
    for label, base, n, floor in spec["floors"]:  # type: ignore[attr-defined]
        if (base, n) not in results:
            continue
        ratio = median(results[(label, n)], "msg_s") / median(results[(base, n)], "msg_s")
        verdict = "" if not floor else "; floor {:g}x: {}".format(
            floor, "holds" if ratio >= floor else "MISSED")
        lines.append(f"- {label} / {base} at N={n}: **{ratio:.2f}x**{verdict}")
    if name == "memory":
        small, big = (median(results[("mailer", n)], "sender_rss_mb") for n in (1000, 100000))
        verdict = "holds" if big <= 1.2 * small else "MISSED"
        lines.append(f"- peak RSS at N=100,000 / N=1,000: **{big / small:.2f}** "
                     f"({big:.1f} / {small:.1f} MB; floor 1.2: {verdict})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help=f"any of {', '.join(SCENARIOS)} [default: all]")
    ap.add_argument("--python", default="/tmp/benchenv/bin/python",
                    help="interpreter with aiosmtpd, mailmerge and this project installed")
    ap.add_argument("--mailer", default="", help="the mailer command [default: next to --python]")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow", action="store_true",
                    help="rtt100 with mailmerge and smtplib too (minutes a run)")
    ap.add_argument("--quiet-wait", type=float, default=0,
                    help="wait up to S s for a quiet machine before each run")
    ap.add_argument("--workdir", default="/tmp/smtp-bench")
    a = ap.parse_args()
    a.scenarios = a.scenarios or list(SCENARIOS)
    if unknown := set(a.scenarios) - set(SCENARIOS):
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    a.mailer = a.mailer or str(Path(a.python).with_name("mailer"))
    Path(a.workdir).mkdir(parents=True, exist_ok=True)
    report = []
    for name in a.scenarios:
        report += [*run(name, a), ""]
    text = "\n".join(report)
    (Path(a.workdir) / "bench-send.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
