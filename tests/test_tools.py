"""require_tool: a tool .ci/run installs is never silently skipped in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import tools
from tests.tools import TOOLS, require_tool


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TOOLS, "spamassassin", (lambda: None, "apt-get install spamassassin"))


def test_a_missing_tool_skips_on_a_developer_machine(
    nothing_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install spamassassin"):
        require_tool("spamassassin")


def test_a_missing_tool_fails_under_ci(
    nothing_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run installs it"):
        require_tool("spamassassin")


def test_a_present_tool_gives_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TOOLS, "spamassassin", (lambda: "/usr/bin/spamassassin", ""))
    assert require_tool("spamassassin") == "/usr/bin/spamassassin"


def test_every_tool_is_one_ci_installs() -> None:
    """Each tool's Debian packages are in .ci/run's list, and ical.js's pinned version."""
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    block = ci[ci.index("APT_PACKAGES=(") : ci.index("\n)\n")].splitlines()[1:]
    listed = {line.split()[0] for line in block if line.strip()}
    for name, (_, install) in TOOLS.items():
        wanted = install.split("&&")[0].removeprefix("apt-get install").split()
        assert wanted and set(wanted) <= listed, (name, wanted, listed)
    assert f"ICALJS_VERSION={tools.ICALJS_VERSION} " in ci
