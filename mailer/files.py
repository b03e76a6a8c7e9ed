"""The one way mailer writes a file of its own: whole or not at all, readable by the
owner only (0600, folders 0700), so a crash never leaves half a CSV or half a .env
behind, and never through a symbolic link.

A link at the target, say one another user planted in a shared folder, is replaced
(a new file renamed over the link itself, never the file it points to) or refused:
nothing here resolves a path or opens one without O_NOFOLLOW.  Every file mailer
writes goes through this module; tests/test_links.py holds every writer to it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def private_file(
    path: Path, *, replace: bool = True, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[TextIO]:
    """A text file to write into, put at `path` when the block ends without an error
    (a temporary file in the same folder, created O_EXCL|O_NOFOLLOW by mkstemp, renamed
    into place: a symlink at `path` is replaced, its target untouched).  With
    replace=False an existing file or link is never clobbered, not even one that
    appeared meanwhile: FileExistsError.  Raises OSError."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as out:
            os.fchmod(out.fileno(), FILE_MODE)  # mkstemp's mode, whatever the umask
            yield out
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file (or a link) exists: never clobber
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def new_file(path: Path) -> BinaryIO:
    """A new 0600 file opened for writing; refuses anything already at `path`, a
    symlink included (FileExistsError).  For a folder mailer owns (the preview)."""
    return os.fdopen(os.open(path, _NEW, FILE_MODE), "wb")


def open_state(path: Path) -> int:
    """A read-write descriptor of a state file (journal, lock), created 0600 when
    missing and made 0600 when an earlier version left it readable by others.  A
    symlink there is refused with OSError(ELOOP)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "it is a symbolic link (mailer writes through none)",
                          str(path)) from None
        raise
    if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
        os.fchmod(fd, FILE_MODE)
    return fd


def private_dir(path: Path) -> Path:
    """`path` as a folder, it and every missing folder above it created 0700 (mkdir's
    `parents=True` gives the parents the umask's mode); existing folders are left as
    they are.  Raises OSError."""
    if path.is_dir():
        return path
    if path.parent != path:
        private_dir(path.parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise
        return path
    if stat.S_IMODE(os.stat(path).st_mode) != DIR_MODE:  # a umask that took the owner's bits
        os.chmod(path, DIR_MODE)
    return path
