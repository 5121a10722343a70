"""What every screen shares: typed access to the app, and worker state sent to its one handler.

`Worker.StateChanged` does not bubble, so each screen hands it to `MedApp.worker_changed`, the
single place where failures become notifications and progress reaches the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.screen import ModalScreen, Screen
from textual.worker import Worker

if TYPE_CHECKING:
    from tui.app import MedApp

R = TypeVar("R")


def medapp_of(screen: Screen[Any]) -> MedApp:
    """The running app: only `MedApp` pushes these screens. (Typed by a cast, not an import of
    `tui.app`, which imports the screens: the tui has no import cycles.)"""
    return cast("MedApp", screen.app)


class MedScreen(Screen[R]):
    @property
    def medapp(self) -> MedApp:
        return medapp_of(self)

    def on_screen_resume(self) -> None:
        # The header missed changes (progress, connection state) while another screen showed;
        # Textual runs this besides the subclasses' own handlers.
        self.medapp.show_busy()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.medapp.worker_changed(event)


class MedModal(ModalScreen[R]):
    @property
    def medapp(self) -> MedApp:
        return medapp_of(self)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.medapp.worker_changed(event)
