"""The card review page in a real headless Chromium (Debian's chromium + chromedriver through
selenium): the page is self-contained, saving without changes gives the very CSV that
`cards review` wrote, an edited field comes back in the saved CSV, and the corrected
contact is mailed once through the real aiosmtpd fixture."""

from __future__ import annotations

import csv
import random
import shutil
import stat
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

pytest.importorskip("rapidocr", reason="the OCR extra is not installed: pip install '.[ocr]'")

from click.testing import CliRunner

from mailer.cli import main
from mailer.contacts import load_contacts
from mailer.contacts.review_page import render_page
from tests.smtpd import SmtpServer
from tests.tools import require_tool

sys.path.insert(0, str(Path(__file__).parent))
from cardgen import CardTruth, find_fonts, render

PROJECT = Path(__file__).resolve().parents[1]
ANNA = "anna.koch@nordlicht.example.com"
LENA = "lena.braun@nordlicht.example.com"

pytestmark = pytest.mark.slow


@pytest.fixture
def reviewed(tmp_path: Path) -> tuple[Path, Path]:
    """Two cards through `cards review`: Anna read with confidence, Lena's "©" needing review."""
    require_tool("fonts")
    fonts = find_fonts()
    rng = random.Random(5)
    folder = tmp_path / "cards"
    folder.mkdir()
    anna = CardTruth("Anna Koch", "Projektleiterin", "Nordlicht Software GmbH", ANNA,
                     "+49301234567", "+491712345678", "www.nordlicht.example.com")  # fmt: skip
    lena = CardTruth("Lena Braun", "Beraterin", "Nordlicht Software GmbH",
                     LENA.replace("@", "©"), "+49301234568", "+491712345679",
                     "www.nordlicht.example.com")  # fmt: skip
    render(anna, fonts[0], rng).save(folder / "a.png")
    render(lena, fonts[0], rng).save(folder / "b.png")
    out = tmp_path / "reviewed.csv"
    result = CliRunner().invoke(
        main, ["cards", "review", str(folder), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    page = out.with_suffix(".html")
    assert page.is_file() and str(page) in result.output
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    return out, page


def test_page_is_self_contained_and_escapes_card_text() -> None:
    row = dict.fromkeys(("file", "status", "name", "email", "qr_differs", "raw_text"), "")
    row.update(file="x.png#1", status="needs review", name='</script><img src=x onerror=alert(1)>',
               email="a@example.com", qr_differs="name: printed 'Ann'")  # fmt: skip
    text = render_page([row], [""], "reviewed.csv")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<img src=x" not in text and "</script><img" not in text
    assert "http://" not in text and "https://" not in text  # nothing is loaded from anywhere
    assert 'class="differs"' in text and "printed: &#x27;Ann&#x27;" in text


def _browser(downloads: Path) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_tool("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(require_tool("chromium-driver")), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


def _saved(downloads: Path, name: str) -> bytes:
    path = downloads / name
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.is_file() and not list(downloads.glob("*.crdownload")):
            return path.read_bytes()
        time.sleep(0.2)
    raise AssertionError(f"no download of {name} in {downloads}: {list(downloads.iterdir())}")


def test_edit_save_reimport_and_mail_once(
    reviewed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("chromium")
    require_tool("chromium-driver")  # chromedriver, from Debian's chromium-driver
    from selenium.webdriver.common.by import By

    out, page = reviewed
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _browser(downloads)
    try:
        driver.get(page.as_uri())  # type: ignore[attr-defined]
        sections = driver.find_elements(By.TAG_NAME, "section")  # type: ignore[attr-defined]
        assert [s.get_attribute("data-status") for s in sections] == ["needs review", "ok"]
        email = driver.find_element(By.ID, "f1-email")  # type: ignore[attr-defined]
        assert email.get_attribute("value") == LENA and "low" in email.get_attribute("class")
        assert (
            sections[0]
            .find_element(By.TAG_NAME, "img")
            .get_attribute("src")
            .startswith("data:image/jpeg;base64,")
        )

        # saved without a change: byte for byte what `cards review` wrote
        driver.find_element(By.ID, "save").click()  # type: ignore[attr-defined]
        assert _saved(downloads, out.name) == out.read_bytes()
        (downloads / out.name).unlink()

        name = driver.find_element(By.ID, "f1-name")  # type: ignore[attr-defined]
        name.clear()
        name.send_keys("Lena Braun-Weber")
        driver.find_element(By.ID, "save").click()  # type: ignore[attr-defined]
        saved = _saved(downloads, out.name)
    finally:
        driver.quit()  # type: ignore[attr-defined]

    corrected = tmp_path / "corrected.csv"
    corrected.write_bytes(saved)
    with corrected.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with out.open(encoding="utf-8-sig", newline="") as handle:
        original = list(csv.DictReader(handle))
    assert rows[1] == {**original[1], "name": "Lena Braun-Weber"} and rows[0] == original[0]

    imported = load_contacts([corrected])
    assert not imported.rejected
    by_email = {c.email: c for c in imported.contacts}
    assert by_email[LENA].name == "Lena Braun-Weber" and not by_email[LENA].needs_review

    monkeypatch.chdir(tmp_path)
    shutil.copy(PROJECT / "profile.example.toml", tmp_path / "profile.toml")
    send = ["send", str(corrected), "--profile", "profile.toml", "--rate", "none", "--yes"]
    with SmtpServer() as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        for _ in range(2):  # the second run finds everybody mailed already
            result = CliRunner().invoke(main, send)
            assert result.exit_code == 0, result.output
        assert sorted(server.recipients()) == [ANNA, LENA]
        lena = next(m for m in server.received if LENA in message_from_bytes(m.data)["To"])
        to = message_from_bytes(lena.data, policy=policy.default)["To"]
        assert to.addresses[0].display_name == "Lena Braun-Weber"
