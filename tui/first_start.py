"""What the first-start screen hands back to the command that started the TUI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from med.model import Profile


@dataclass(frozen=True)
class FirstStart:
    """`demo`: start the lab with the demo organisation; `profile`: save and use `profile`."""

    choice: Literal["demo", "profile"]
    profile: Profile | None = None
