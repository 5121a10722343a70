"""Device verification in the messenger: a contact's safety number, approving a device of mine.

A safety number is compared out of band (read aloud, in person): equal digits on both sides
rule out a server that swapped keys. A new device of mine gets no group keys until a device
holding my master key approves it, after comparing its fingerprint with the one it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from messenger.client.e2e import DeviceTrust
from tui.screens.dialogs import DIALOG_CSS

TRUST_TEXT = {
    "owner": "✓ verified (approved by its owner)",
    "admin": "✓ approved by an administrator",
    "unverified": "⚠ unverified: gets no group keys",
}


def group_digits(number: str) -> str:
    """Safety numbers in blocks of five, as people read them aloud."""
    digits = "".join(c for c in number if c.isdigit())
    blocks = [digits[i : i + 5] for i in range(0, len(digits), 5)]
    return "\n".join(" ".join(blocks[i : i + 4]) for i in range(0, len(blocks), 4))


def trust_row(device: DeviceTrust, *, this_device: str = "") -> str:
    mark = "  (this computer)" if device.device_id == this_device else ""
    by = (
        f" {device.approved_by[:8]}" if device.trust.value == "admin" and device.approved_by else ""
    )
    return (
        f"{device.device_id[:8]}  {TRUST_TEXT[device.trust.value]}{by}{mark}\n"
        f"   fingerprint {device.fingerprint}"
    )


class SafetyNumberScreen(ModalScreen[None]):
    DEFAULT_CSS = DIALOG_CSS.replace("{name}", "SafetyNumberScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "close", "Close")]

    def __init__(self, name: str, number: str, devices: Sequence[DeviceTrust]) -> None:
        super().__init__()
        self.person = name
        self.number = number
        self.devices = list(devices)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Safety number with {self.person}")
            yield Static(group_digits(self.number), id="safety-number")
            yield Label(
                "Compare it with theirs in person or by phone; equal means no one swapped keys."
            )
            yield Static("\n".join(trust_row(d) for d in self.devices) or "(no devices)")

    def action_close(self) -> None:
        self.dismiss(None)


class DevicesScreen(ModalScreen[str | None]):
    """My devices and their trust; Enter on an unverified one approves it (with the master key)."""

    DEFAULT_CSS = (
        DIALOG_CSS.replace("{name}", "DevicesScreen")
        + """
    DevicesScreen OptionList { height: auto; max-height: 16; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(
        self, devices: Sequence[DeviceTrust], this_device: str, holds_master_key: bool
    ) -> None:
        super().__init__()
        self.devices = list(devices)
        self.this_device = this_device
        self.holds_master_key = holds_master_key

    def compose(self) -> ComposeResult:
        hint = (
            "Enter on an unverified device approves it: compare its fingerprint with the one"
            " it shows first."
            if self.holds_master_key
            else "This computer holds no master key: approve new devices from the one that does."
        )
        with Vertical():
            yield Label("My devices")
            yield OptionList(
                *[
                    Option(trust_row(d, this_device=self.this_device), id=d.device_id)
                    for d in self.devices
                ],
                id="devices",
            )
            yield Static(hint)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        device = next((d for d in self.devices if d.device_id == event.option.id), None)
        if device is None or device.trust.value != "unverified" or not self.holds_master_key:
            self.notify("Only an unverified device can be approved, from a device with the key.")
            return
        self.dismiss(device.device_id)

    def action_close(self) -> None:
        self.dismiss(None)
