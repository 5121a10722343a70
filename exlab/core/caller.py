"""Who acts: the lab and the authenticated user every rule of the core is checked against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exlab.lab import Lab


@dataclass
class Caller:
    """The acting user in one lab; the faces extend it with what their protocol adds."""

    lab: Lab
    user: str
