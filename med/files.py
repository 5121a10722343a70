"""Writing med's private files: whole or not at all, readable by the user alone."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, mode 0600, in its directory (made 0700 when missing).

    A reader sees the old file or the new one, never half of one: the bytes go to a file of
    their own name first (two processes writing at once do not share it), then take the
    place of `path`. Not synced to disk: after a power cut the file may be the old one or
    empty, which its readers (caches) take as nothing known.

    Raises:
        OSError: the directory cannot be made or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp makes the file 0600
            f.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
