"""The one way mailer writes a file of its own: whole or not at all, readable by the
owner only (0600), so a crash never leaves half a CSV or half a .env behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def private_file(
    path: Path, *, replace: bool = True, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[TextIO]:
    """A text file to write into, put at `path` when the block ends without an error
    (a temporary file in the same folder, renamed into place).  With replace=False an
    existing file is never clobbered, not even one that appeared meanwhile:
    FileExistsError.  Raises OSError."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as out:
            os.chmod(tmp, 0o600)  # mkstemp's mode, whatever the umask
            yield out
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file exists: never clobber
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
