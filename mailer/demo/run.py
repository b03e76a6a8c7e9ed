"""The demo: the whole path on the bundled example data, through a local capture server.

Copy contacts.csv.example and profile.example.toml into the demo folder,
import and render them with the default templates, write the preview, queue,
and send every message over real SMTP to the capture server, which stores
them in a Maildir.  No account, no network.  Each run starts afresh in its
folder, so it can be run any number of times.
"""

from __future__ import annotations

import importlib.resources
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..campaign.plan import Tally, plan_files
from ..campaign.preview import PreviewSummary, write_preview
from ..compose.message import Composer
from ..compose.profile import load_profile
from ..config import SmtpSettings
from ..files import private_dir, private_file
from ..journal import Journal, journal_path
from ..smtp.pace import RateLimiter
from ..smtp.sender import SendSummary, send_campaign_sync
from .capture import CaptureServer

CAMPAIGN = "demo"


@dataclass(frozen=True, slots=True)
class DemoReport:
    preview: PreviewSummary
    send: SendSummary
    maildir: Path
    journal: Path


def example_file(name: str) -> Path:
    """A bundled example file: packaged in the wheel, else the checkout's copy."""
    packaged = importlib.resources.files("mailer") / "_data" / name
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / name


def run_demo(workdir: Path) -> DemoReport:
    for stale in ("Maildir", "preview", "state"):
        shutil.rmtree(workdir / stale, ignore_errors=True)
    # Copies beside the results, so the user can read, edit and reuse the inputs.
    private_dir(workdir)
    inputs = {}
    for name in ("contacts.csv.example", "profile.example.toml"):
        inputs[name] = workdir / name
        with private_file(inputs[name]) as out:
            out.write(example_file(name).read_text(encoding="utf-8"))
    profile = load_profile(inputs["profile.example.toml"])
    composer = Composer(profile)
    journal_file = journal_path(workdir / "state")
    with Journal(journal_file) as journal:
        items = list(plan_files([inputs["contacts.csv.example"]], composer, journal,
                                campaign=CAMPAIGN, region=profile.region))
        preview = write_preview(items, workdir / "preview")
        journal.enqueue(CAMPAIGN, Tally().new_drafts(items))
        maildir = workdir / "Maildir"
        with CaptureServer(maildir) as server:
            settings = SmtpSettings(host=server.host, port=server.port, security="none")
            summary = send_campaign_sync(
                journal, CAMPAIGN, settings, limiter=RateLimiter(()), concurrency=2
            )
    return DemoReport(preview=preview, send=summary, maildir=maildir, journal=journal_file)
