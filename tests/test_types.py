"""The code base stays `mypy --strict` clean (config in pyproject.toml): checked by
the suite like ruff, so CI enforces it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def test_mypy_strict_is_clean() -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("mypy is not installed (pip install '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=PROJECT, capture_output=True,
        text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_the_package_says_it_is_typed() -> None:
    assert (PROJECT / "mailer" / "py.typed").is_file()
