"""Time and memory bounds for tests of hostile input.

`deadline` interrupts the code under test (a SIGALRM timer; Python's regex engine and
interpreter loop check for signals), so a reader that would backtrack for days fails
the test after its bound instead of hanging the suite.  `Overrun` is a BaseException,
so that no `except Exception` in the code under test can swallow it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Overrun(BaseException):
    """The code under test ran past its deadline."""


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise Overrun(f"{what} ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
