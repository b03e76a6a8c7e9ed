"""Issue 23 items 3 and 9: what a new user's machine and cron set-up bring along.

A `TZ` that names no zone, `MAILER_ENV_FILE=/dev/null`, and an `--at` error whose ISO
example must not lie in the past.  The commands run as cron runs them: a separate
process with its own environment, against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mailer.config import environment
from mailer.errors import ConfigError
from mailer.schedule.when import parse_when
from tests.conftest import PEOPLE
from tests.smtpd import SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
BAD_ZONES = ["Europe/Nowhere", "garbage", "/no/such/zone"]


def mailer(work: Path, zone: str, *args: str) -> subprocess.CompletedProcess[str]:
    # the server's settings are in the environment (conftest's `server`), as cron passes them
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "TZ": zone, "MAILER_ENV_FILE": "/dev/null"}
    return subprocess.run([sys.executable, "-m", "mailer", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def warned_once_and_no_traceback(result: subprocess.CompletedProcess[str], zone: str) -> None:
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr, result.stderr
    warning = f"mailer: warning: TZ={zone!r} names no time zone; times are read and shown in UTC"
    assert result.stderr.count(warning) == 1, result.stderr


@pytest.mark.parametrize("zone", BAD_ZONES)
def test_a_bad_tz_falls_back_to_utc_in_send_campaigns_and_run_due(
    work: Path, server: SmtpServer, zone: str
) -> None:
    sent = mailer(work, zone, "send", "contacts.csv", "--profile", "profile.toml",
                  "--campaign", "now", "--yes")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    warned_once_and_no_traceback(sent, zone)
    assert sorted(server.recipients()) == sorted(PEOPLE)

    later = mailer(work, zone, "send", "contacts.csv", "--profile", "profile.toml",
                   "--campaign", "later", "--again", "--at", "2099-03-02T09:00", "--yes")
    assert later.returncode == 0, later.stdout + later.stderr
    warned_once_and_no_traceback(later, zone)
    assert "Mon 2099-03-02 09:00 UTC" in later.stdout  # what the time means, said plainly

    listed = mailer(work, zone, "campaigns", "--json")
    assert listed.returncode == 0, listed.stderr
    campaigns = {c["name"]: c for c in json.loads(listed.stdout)}
    assert campaigns["later"]["scheduled_at"] == datetime(2099, 3, 2, 9, tzinfo=UTC).timestamp()
    table = mailer(work, zone, "campaigns")
    assert table.returncode == 0, table.stderr
    warned_once_and_no_traceback(table, zone)

    due = mailer(work, zone, "run-due")
    assert due.returncode == 0, due.stdout + due.stderr
    warned_once_and_no_traceback(due, zone)
    assert len(server.recipients()) == len(PEOPLE)  # 2099 is not due


def test_mailer_env_file_dev_null_means_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MAILER_SMTP_HOST=smtp.example.com\n", encoding="utf-8")
    monkeypatch.setenv("MAILER_ENV_FILE", os.devnull)
    assert "MAILER_SMTP_HOST" not in environment()  # neither refused nor ./.env read
    monkeypatch.setenv("MAILER_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match="is not a file"):  # a real name still must exist
        environment()


@pytest.mark.parametrize("days", [0, 400, 4000])
def test_the_example_of_an_unreadable_time_lies_in_the_future(days: int) -> None:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC) + timedelta(days=days)
    with pytest.raises(ConfigError) as refused:
        parse_when("next blursday", now)
    example = re.search(r"'(\d{4}-\d\d-\d\dT\d\d:\d\d)'", str(refused.value))
    assert example is not None, refused.value
    assert parse_when(example[1], now) > now  # the example, copied, is accepted


# -- the suite itself passes the same way on every machine ---------------------------------


def test_property_tests_are_derandomised_unless_exploring_is_asked_for() -> None:
    from hypothesis import settings

    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if profile != "ci":
        pytest.skip(f"HYPOTHESIS_PROFILE={profile}: exploring on purpose")
    assert settings.default.derandomize and settings.default.database is None
    ran = subprocess.run(  # a fresh process without the variable gets the same profile
        [sys.executable, "-c", "import tests.conftest, hypothesis as h; "
         "print(h.settings.default.derandomize, h.settings.default.database)"],
        cwd=PROJECT, env={k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"},
        capture_output=True, text=True, timeout=60, check=True)
    assert ran.stdout.split() == ["True", "None"]


def unseeded_randomness(source: str) -> list[int]:
    """Lines that draw from the module-level generator or a Random() without a seed."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner, name = node.func.value, node.func.attr
        seeded = name == "Random" and bool(node.args or node.keywords)
        if isinstance(owner, ast.Name) and owner.id == "random" and not seeded:
            found.append(node.lineno)
    return found


def test_no_test_or_benchmark_draws_unseeded_randomness() -> None:
    assert unseeded_randomness("import random\nrandom.shuffle(x)\nrandom.Random()\n") == [2, 3]
    assert unseeded_randomness("import random\nrng = random.Random(7)\nrng.random()\n") == []
    offenders = {
        str(path.relative_to(PROJECT)): lines
        for folder in ("tests", "bench")
        for path in sorted((PROJECT / folder).rglob("*.py"))
        if (lines := unseeded_randomness(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "seed them: random.Random(N)"


# -- what the tests resolve to is pinned -----------------------------------------------------


def requirements() -> list[Requirement]:
    import tomllib

    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] + [r for e in ("ocr", "test") for r in
                                        project["optional-dependencies"][e]]
    return [Requirement(r) for r in listed]


def pins() -> dict[str, str]:
    found = {}
    for line in (PROJECT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and " " not in line, f"not a pin: {line!r}"
            found[canonicalize_name(name)] = version
    return found


def test_every_requirement_has_an_upper_bound_on_its_major_version() -> None:
    for requirement in requirements():
        assert any(s.operator == "<" for s in requirement.specifier), requirement
        assert any(s.operator == ">=" for s in requirement.specifier), requirement


def test_constraints_pin_every_requirement_within_its_range() -> None:
    pinned = pins()
    assert "contact-card-mailer" not in pinned
    for requirement in requirements():
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in constraints.txt (.ci/lock)"
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_readme_and_ci_run_the_same_pinned_test_command() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    ci = (PROJECT / ".ci" / "run").read_text(encoding="utf-8")
    command = ("python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt "
               "'.[ocr,test]' && .venv/bin/python -m pytest")
    assert readme.count(command) == 2  # Quick start and Development
    assert command in ci.splitlines()
