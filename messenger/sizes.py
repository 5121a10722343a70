"""Sizes as people read them (decimal units, as storage is sold: 1 GB = 1000³ bytes)."""

from __future__ import annotations

__all__ = ["human_size"]


def human_size(size: int) -> str:
    """`1500` -> "1.5 KB"; whole bytes below 1000."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
