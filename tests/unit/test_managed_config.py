"""The tenant's app configuration written as managed settings: only keys the TUI accepts, the
file replaced whole and at once, the device's own managed files still winning."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bridge import settings
from bridge.cli import managed_key_check
from bridge.managed_config import MessengerSignIn, apply_app_config, sync_managed
from bridge.settings import Source, tenant_managed_file


class FakeMessenger:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    async def tenant_config(self) -> dict[str, Any]:
        return self.answer


def test_only_keys_the_tui_accepts_are_written_and_the_rest_named() -> None:
    report = apply_app_config(
        {
            "tui.page_size": 40,
            "tui.page_size_typo": 1,
            "tui.animations": "yes",  # not a boolean
            "med.default_profile": "dienst",  # not the tenant's to deliver
            "tui..editor": "vim",
            "keymap.quit": "ctrl+q",
        },
        managed_key_check,
    )
    assert report.path == tenant_managed_file()
    assert dict(report.written) == {"tui.page_size": 40, "keymap.quit": "ctrl+q"}
    assert sorted(report.rejected) == [
        "med.default_profile",
        "tui..editor",
        "tui.animations",
        "tui.page_size_typo",
    ]
    assert "true or false" in report.rejected["tui.animations"]
    assert json.loads(report.path.read_text(encoding="utf-8")) == dict(report.written)
    loaded = settings.load()
    setting = loaded.get("tui", "page_size")
    assert setting is not None and setting.source is Source.MANAGED and setting.locked


async def test_a_sync_replaces_the_file_whole_and_the_device_wins(tmp_path: Path) -> None:
    await sync_managed(
        FakeMessenger({"app_config": {"tui.page_size": 40, "tui.animations": False}}),
        managed_key_check,
    )
    await sync_managed(FakeMessenger({"app_config": {"tui.page_size": 60}}), managed_key_check)
    assert json.loads(tenant_managed_file().read_text(encoding="utf-8")) == {"tui.page_size": 60}
    assert [p.name for p in tenant_managed_file().parent.iterdir()] == ["tenant.json"]
    device = tmp_path / "managed"
    device.mkdir()
    (device / "managed.toml").write_text("[tui]\npage_size = 25\n", encoding="utf-8")
    setting = settings.load().get("tui", "page_size")
    assert setting is not None and setting.value == 25
    assert setting.origin == str(device / "managed.toml")


def test_a_failed_write_keeps_the_file_delivered_last(monkeypatch: pytest.MonkeyPatch) -> None:
    apply_app_config({"tui.page_size": 40}, managed_key_check)

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        apply_app_config({"tui.page_size": 80}, managed_key_check)
    target = tenant_managed_file()
    assert json.loads(target.read_text(encoding="utf-8")) == {"tui.page_size": 40}
    assert [p.name for p in target.parent.iterdir()] == ["tenant.json"]  # no half file left


def test_the_kept_sign_in_is_private_and_never_shows_its_token() -> None:
    MessengerSignIn("https://chat.kreis.example", "anna@kreis.example", "secret-token").save()
    loaded = MessengerSignIn.load()
    assert loaded == MessengerSignIn(
        "https://chat.kreis.example", "anna@kreis.example", "secret-token"
    )
    assert "secret-token" not in repr(loaded)
    from bridge.managed_config import sign_in_file

    assert sign_in_file().stat().st_mode & 0o777 == 0o600
