"""Profiles open side by side: each its own Exchange organisation, session and mailboxes.

An external consultant or a person with several roles works in several organisations at once
(`medbridge tui --profile kreis --profile klinikum`). Each profile keeps its own
`DelegateSession` (EWS or Graph, its own credentials) and its own `Workspace`; its messenger
connection is `MedApp.messenger.get(name)` (`tui.messaging.MessengerHub`). The app shows
them side by side, and one failing to sign in leaves the others working. With one profile the
app looks as it always did (no organisation level).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from med import DelegateSession
from tui.workspace import Workspace


class ProfileState(enum.StrEnum):
    """Where a profile's sign-in stands, as the mailbox tree shows it."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(eq=False)
class OpenProfile:
    """One profile in the app: its session, what was loaded from it, and how it stands.

    Args:
        name: the profile's name in the configuration (`[med.profiles.NAME]`).
        session: its open session; None when it could not even be opened (`error` says why).
        organisation: how the header and the tree name the organisation; the name by default.
        relogin: a new session for another password (None: the sign-in takes no password).
        error: why the profile could not be opened or signed in.
    """

    name: str
    session: DelegateSession | None
    organisation: str = ""
    relogin: Callable[[str], DelegateSession] | None = None
    error: str | None = None
    state: ProfileState = ProfileState.LOADING
    workspace: Workspace = field(default_factory=Workspace)
    #: Sessions the app opened itself (after a new password) and so closes itself.
    opened_here: DelegateSession | None = None

    def __post_init__(self) -> None:
        if not self.organisation:
            self.organisation = self.name
        if self.session is not None and not self.workspace.user:
            self.workspace.user = self.session.user
        if self.session is None:
            self.state = ProfileState.FAILED
            self.error = self.error or "The profile could not be opened."

    def fail(self, reason: str) -> None:
        self.state = ProfileState.FAILED
        self.error = reason

    def reset(self) -> None:
        """Start loading afresh (a retry): what was loaded goes, the session stays."""
        self.state = ProfileState.LOADING
        self.error = None
        self.workspace = Workspace(user=self.session.user if self.session else "")


def check_profile_names(names: list[str]) -> list[str]:
    """The profiles to open together, in order; raises ValueError naming a duplicate."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"The profile {name!r} is named twice; open each profile once.")
        seen.add(name)
    return names
