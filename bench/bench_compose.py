"""Per-message compose cost: `Composer.render` (templates + headers + MIME bytes)
against the stdlib baseline of building the same message as an `EmailMessage`
(text + HTML alternative + vCard attachment) and serialising it, in one run
(from a checkout; after `pip install -e .` the PYTHONPATH is not needed).

    PYTHONPATH=. /work/venv/bin/python bench/bench_compose.py [-n 2000] [--runs 5]

The baseline gets the already rendered text and HTML, so it measures only the
message building that `Composer` replaces; the Composer figure includes its
own Jinja2 rendering.  Ratio = baseline / Composer (higher is better).

A second baseline is the same Composer rendering every template whole, as it
did before it rendered the parts that are the same for everyone once: the
ratio whole / split is what that saves.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from mailer.compose.message import Composer, vcard_filename
from mailer.compose.profile import Profile, load_profile
from mailer.models import Contact, Draft

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["Ada Lovelace", "Jürgen Müller", "Zoë Ünal", "Grace Hopper", "", "Kim Lee"]


def contacts(n: int) -> list[Contact]:
    return [
        Contact(email=f"person{i}@example.{('com', 'org', 'de')[i % 3]}", name=NAMES[i % 6])
        for i in range(n)
    ]


def baseline(profile: Profile, vcard: bytes) -> Callable[[Draft, str], bytes]:
    def build(draft: Draft, name: str) -> bytes:
        msg = EmailMessage()
        msg["From"] = f"{profile.name} <{profile.email}>"
        msg["To"] = f"{name} <{draft.recipient}>" if name else draft.recipient
        msg["Subject"] = draft.subject
        msg["Message-ID"] = draft.message_id
        msg["List-Unsubscribe"] = f"<mailto:{profile.email}?subject=unsubscribe>"
        msg.set_content(draft.text)
        msg.add_alternative(draft.html, subtype="html")
        msg.add_attachment(
            vcard, maintype="text", subtype="vcard", filename=vcard_filename(profile.name)
        )
        return msg.as_bytes(policy=SMTP)

    return build


def whole(composer: Composer) -> Composer:
    """The Composer rendering every template whole (see tests/test_compose_split.py)."""
    for split in (s for templates in composer._templates.values() for s in templates):
        split._parts = [(False, split.template)]
        split._pieces = None
    return composer


def per_message_us(cases: dict[str, Callable[[], object]], n: int, runs: int) -> dict[str, float]:
    """Median microseconds per message of each case; the cases take turns run by
    run, so that a machine whose load drifts weighs on all of them alike."""
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            timings[name].append((time.perf_counter() - start) / n * 1e6)
    return {name: statistics.median(t) for name, t in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="messages per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    profile = load_profile(ROOT / "profile.example.toml")
    composer = Composer(profile)
    people = contacts(args.n)
    drafts = [composer.render(c) for c in people]  # warm-up, and the baseline's input
    build = baseline(profile, profile.vcard().encode())

    reference = whole(Composer(profile))
    [reference.render(c) for c in people]  # warm-up
    us = per_message_us({
        "split": lambda: [composer.render(c) for c in people],
        "baseline": lambda: [build(d, c.name) for d, c in zip(drafts, people, strict=True)],
        "whole": lambda: [reference.render(c) for c in people],
    }, args.n, args.runs)
    ours, theirs, undivided = us["split"], us["baseline"], us["whole"]
    size = statistics.mean(len(d.payload) for d in drafts)
    print(f"messages per run: {args.n}, runs: {args.runs} (median), mean size {size:.0f} B")
    print(f"Composer.render (render + build):       {ours:8.1f} us/message")
    print(f"EmailMessage build + as_bytes (baseline): {theirs:8.1f} us/message")
    print(f"ratio baseline / Composer:              {theirs / ours:8.2f}x")
    print(f"Composer rendering templates whole:       {undivided:8.1f} us/message")
    print(f"ratio whole / split:                    {undivided / ours:8.2f}x")


if __name__ == "__main__":
    main()
