"""The run-due lock: overlapping `mailer run-due` runs never work at the same time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ..errors import ConfigError
from ..files import open_state


class RunLock:
    """Non-blocking exclusive lock so that overlapping `run-due` invocations
    (cron every 5 minutes, a slow run) never work at the same time.

        with RunLock(state_dir) as lock:
            if not lock.acquired:
                return  # another run is busy; it will do the work

    flock is released by the kernel when the process dies, so a crashed run
    never leaves a stale lock behind.  The file itself is kept on purpose:
    deleting a lock file lets two processes lock two different files.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "run-due.lock"
        self.acquired = False
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self._fd = open_state(self.path)  # never a link: it is truncated below
        except OSError as err:
            raise ConfigError(f"Cannot open the lock file {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self
        self.acquired = True
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious human
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        self.acquired = False
