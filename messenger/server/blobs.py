"""Attachment bytes on the filesystem: written to a temporary file, then moved into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path


class BlobStore:
    """Blobs under `root`; uploads in progress under `root/tmp/<node>` (one folder per node,
    so a node starting up clears its own leftovers and never another node's uploads)."""

    def __init__(self, root: Path, node: str = "node") -> None:
        self.root = root
        self.tmp = root / "tmp" / node
        self.tmp.mkdir(parents=True, exist_ok=True)

    def clean_tmp(self) -> int:
        """Delete partial uploads left by a crash of this node; returns how many went."""
        gone = 0
        for leftover in [*self.tmp.iterdir(), *(self.root / "tmp").iterdir()]:
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
                gone += 1
        return gone

    def path(self, blob_id: str) -> Path:
        if not blob_id.isalnum():
            raise ValueError("blob ids are alphanumeric")
        return self.root / blob_id[:2] / blob_id

    async def receive(self, chunks: AsyncIterator[bytes], limit: int) -> tuple[Path, int]:
        """Spool the chunks to a temporary file; raise OverflowError past `limit` bytes."""
        fd, name = tempfile.mkstemp(dir=self.tmp)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise OverflowError(limit)
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), size

    def commit(self, tmp: Path, blob_id: str) -> Path:
        final = self.path(blob_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return final

    def read(self, blob_id: str) -> bytes | None:
        """The blob's bytes, None when it is gone (an audit export takes it whole)."""
        try:
            return self.path(blob_id).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(blob_id).unlink()
