"""The preview page in headless Chromium: each message's HTML pane is as tall as the
message, so no scroll bar of its own hides the end of the mail (its footer)."""

from __future__ import annotations

import re
from pathlib import Path

from mailer.campaign.plan import plan
from mailer.campaign.preview import write_preview
from mailer.compose.message import Composer
from mailer.compose.profile import load_profile
from mailer.contacts import load_contacts
from tests.tools import chromium_dom

OLD_FIXED_HEIGHT = 640  # px: the frame height that cut off the footer in a narrow window


def test_html_panes_grow_with_their_message(project_root: Path, tmp_path: Path) -> None:
    profile = load_profile(project_root / "profile.example.toml")
    contacts = load_contacts([project_root / "contacts.csv.example"], region=profile.region)
    summary = write_preview(plan(contacts.contacts, Composer(profile), None), tmp_path / "out")
    frames = summary.messages
    assert frames == 5
    narrow = chromium_dom(summary.index, tmp_path / "chromium", width=480)
    heights = [int(h) for h in re.findall(r'<iframe[^>]*style="height: (\d+)px;"', narrow)]
    # every frame sized by the page's script (so its CSP hash matches), and taller than the
    # old fixed height at this width, which is where the footer used to be cut off
    assert len(heights) == frames, narrow[:3000]
    assert min(heights) > OLD_FIXED_HEIGHT
    wide = chromium_dom(summary.index, tmp_path / "chromium", width=1400)
    wide_heights = [int(h) for h in re.findall(r'<iframe[^>]*style="height: (\d+)px;"', wide)]
    assert len(wide_heights) == frames and max(wide_heights) < min(heights)  # fits, no gap
