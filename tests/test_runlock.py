"""runlock.py: the run-due lock across real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailer.errors import ConfigError
from mailer.schedule.runlock import RunLock

PROJECT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_EVENING = datetime(2026, 11, 27, 20, 0, tzinfo=BERLIN)  # back from the conference


def berlin(*fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]

# --- RunLock: two real processes ----------------------------------------------

HOLDER = """
import sys
from pathlib import Path
from mailer.schedule.runlock import RunLock
with RunLock(Path(sys.argv[1])) as lock:
    print(lock.acquired, flush=True)
    sys.stdin.readline()  # hold until the test says so
"""


def start_holder(state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )


def try_in_other_process(state: Path) -> bool:
    child = start_holder(state)
    out, _ = child.communicate("\n", timeout=60)
    return out.strip() == "True"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def test_a_second_process_does_not_get_the_lock_and_does_not_wait(state: Path) -> None:
    holder = start_holder(state)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        with RunLock(state) as lock:
            assert not lock.acquired
        assert not try_in_other_process(state)
    finally:
        holder.communicate("\n", timeout=60)
    with RunLock(state) as lock:  # released when the holder finished
        assert lock.acquired
        assert not try_in_other_process(state)
    assert try_in_other_process(state)


def test_a_killed_holder_leaves_no_stale_lock(state: Path) -> None:
    holder = start_holder(state)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "True"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    holder.stdin.close()  # type: ignore[union-attr]
    holder.stdout.close()
    with RunLock(state) as lock:
        assert lock.acquired
        assert (state / "run-due.lock").read_text().strip() == str(os.getpid())


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot open the lock file"), RunLock(tmp_path / "gone"):
        pass


def test_two_locks_in_one_process_exclude_each_other_too(state: Path) -> None:
    with RunLock(state) as first, RunLock(state) as second:
        assert first.acquired and not second.acquired


