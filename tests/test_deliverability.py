"""The preview of the example contacts through both shared checkers:
mailcheck (structure, strict) and spamscore (SpamAssassin, offline) below 1.0."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mailer.campaign.plan import plan
from mailer.campaign.preview import write_preview
from mailer.compose.message import Composer
from mailer.compose.profile import load_profile
from mailer.contacts import load_contacts
from tests.tools import require_tool, tool_missing

MAX_SPAM_SCORE = 1.0


@pytest.fixture(params=["example", "one-click-no-event"])
def preview_dir(request: pytest.FixtureRequest, project_root: Path, tmp_path: Path) -> Path:
    """The example profile as shipped, and a variant with an HTTPS one-click
    unsubscribe URL and no event, so both header sets and greetings are scored."""
    text = (project_root / "profile.example.toml").read_text(encoding="utf-8")
    if request.param == "one-click-no-event":
        text = re.sub(r"(?m)^event = .*$", "", text)
        text = 'unsubscribe_url = "https://example.com/unsubscribe?list=contacts"\n' + text
    profile_path = tmp_path / "profile.toml"
    profile_path.write_text(text, encoding="utf-8")
    profile = load_profile(profile_path)
    result = load_contacts([project_root / "contacts.csv.example"], region=profile.region)
    out = tmp_path / "preview"
    summary = write_preview(plan(result.contacts, Composer(profile), None), out)
    assert summary.messages == len(result.contacts) >= 5
    return out


def test_every_preview_message_passes_mailcheck_strict(shared_dir: Path, preview_dir: Path) -> None:
    done = subprocess.run(
        [str(shared_dir / "tools" / "mailcheck"), "--strict", str(preview_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS ") == len(list(preview_dir.glob("*.eml")))


@pytest.mark.parametrize("scoreset", ["0", "3"])
def test_spamassassin_scores_every_message_below_one(
    shared_dir: Path, preview_dir: Path, scoreset: str
) -> None:
    """Score set 0 is the offline default; 3 weighs the same rules as a receiver
    with Bayes and network tests would."""
    require_tool("spamassassin")
    done = subprocess.run(
        [str(shared_dir / "tools" / "spamscore"), "--scoreset", scoreset, str(preview_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode == 2:
        tool_missing("spamassassin", f"spamscore cannot run: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    scores = [
        float(line.split("\t", 1)[0]) for line in done.stdout.splitlines() if ".eml\t" in line
    ]
    assert len(scores) == len(list(preview_dir.glob("*.eml")))
    assert max(scores) < MAX_SPAM_SCORE, done.stdout
