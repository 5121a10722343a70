"""The TUI's settings as typed values.

The `medbridge` command owns where settings come from (TOML file under the XDG config dir,
`MEDBRIDGE_*`, `--config`); it hands the `[tui]` and `[keymap]` tables to `TuiConfig.from_mapping`
and passes the result to `tui.app.make_app`. Nothing here reads the environment or finds paths.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.keys import KEY_NAME_REPLACEMENTS, Keys

from tui.actions import action_ids
from tui.alarm_board import parse_position
from tui.profiles import check_profile_names


class ConfigError(ValueError):
    """The TUI part of the configuration cannot be used; the message says what to change."""


@dataclass(frozen=True)
class TuiConfig:
    """What the user may set for the TUI."""

    drafts_dir: Path
    """Where unsent drafts are autosaved, one JSON file each (survives crashes and lost links)."""
    keymap: Mapping[str, str] = field(default_factory=dict)
    """Binding id → comma-separated keys, e.g. {"reply-all": "ctrl+r"}; see docs/tui.md."""
    editor: str | None = None
    """Command for the external editor; None means `$VISUAL`, then `$EDITOR`, then `vi`."""
    page_size: int = 200
    """How many list rows one server request fetches."""
    animations: bool = True
    """Off for snapshot tests and slow terminals."""
    audio_player: str | None = None
    """Command used to play voicemail; None means the first of `xdg-open`, `paplay`, `aplay`."""
    downloads_dir: Path = field(default_factory=lambda: Path.home() / "Downloads")
    """Where saved attachments go."""
    panic_position: str | None = None
    """Where you are, for the panic key: "latitude, longitude[, accuracy in metres]"."""
    panic_voice: Path | None = None
    """A recorded voice message (.ogg Opus or .wav) the panic key sends; else it records one."""
    voice_recorder: str | None = None
    """Recording command with `{path}` and `{seconds}`; None means arecord, then parecord."""
    record_seconds: int = 10
    """How long the panic dialog records."""
    desktop_notifications: bool = True
    """Alarms also as a desktop notification where `notify-send` exists."""
    profiles: tuple[str, ...] = ()
    """Profiles `medbridge tui` opens side by side when no `--profile` is given."""

    @classmethod
    def from_mapping(
        cls,
        tui: Mapping[str, Any] | None,
        keymap: Mapping[str, Any] | None,
        *,
        drafts_dir: Path,
    ) -> TuiConfig:
        """Build from the `[tui]` and `[keymap]` tables; raises ConfigError naming the bad entry."""
        tui = dict(tui or {})
        known = {"editor", "page_size", "animations", "audio_player", "downloads_dir", "profiles"}
        known |= {
            "panic_position",
            "panic_voice",
            "voice_recorder",
            "record_seconds",
            "desktop_notifications",
        }
        unknown = sorted(set(tui) - known)
        if unknown:
            raise ConfigError(f"Unknown setting in [tui]: {', '.join(unknown)}.")
        page_size = tui.get("page_size", 200)
        if (
            not isinstance(page_size, int)
            or isinstance(page_size, bool)
            or not 10 <= page_size <= 1000
        ):
            raise ConfigError("[tui] page_size must be a whole number from 10 to 1000.")
        for name in ("editor", "audio_player", "downloads_dir", "panic_voice", "voice_recorder"):
            if tui.get(name) is not None and not isinstance(tui[name], str):
                raise ConfigError(f"[tui] {name} must be a command line in quotes.")
        animations = tui.get("animations", True)
        if not isinstance(animations, bool):
            raise ConfigError("[tui] animations must be true or false.")
        panic = _alarm_settings(tui)
        profiles = tui.get("profiles", [])
        if isinstance(profiles, str):
            profiles = [profiles]
        if not isinstance(profiles, list) or not all(
            isinstance(p, str) and p.strip() for p in profiles
        ):
            raise ConfigError('[tui] profiles must be a list of profile names, e.g. ["a", "b"].')
        try:
            check_profile_names([p.strip() for p in profiles])
        except ValueError as exc:
            raise ConfigError(f"[tui] profiles: {exc}") from None
        return cls(
            profiles=tuple(p.strip() for p in profiles),
            drafts_dir=drafts_dir,
            keymap=parse_keymap(keymap or {}),
            editor=tui.get("editor"),
            page_size=page_size,
            animations=animations,
            audio_player=tui.get("audio_player"),
            downloads_dir=Path(tui["downloads_dir"]).expanduser()
            if tui.get("downloads_dir")
            else Path.home() / "Downloads",
            **panic,
        )


def _alarm_settings(tui: Mapping[str, Any]) -> dict[str, Any]:
    """The panic key's and the alarms' settings of `[tui]`, checked."""
    position = tui.get("panic_position")
    if position is not None:
        if not isinstance(position, str):
            raise ConfigError('[tui] panic_position must be text like "52.52, 13.405, 10".')
        try:
            parse_position(position)
        except ValueError as exc:
            raise ConfigError(f"[tui] panic_position: {exc}") from exc
    seconds = tui.get("record_seconds", 10)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 120:
        raise ConfigError("[tui] record_seconds must be a whole number from 1 to 120.")
    desktop = tui.get("desktop_notifications", True)
    if not isinstance(desktop, bool):
        raise ConfigError("[tui] desktop_notifications must be true or false.")
    voice = tui.get("panic_voice")
    return {
        "panic_position": position,
        "panic_voice": Path(voice).expanduser() if voice else None,
        "voice_recorder": tui.get("voice_recorder"),
        "record_seconds": seconds,
        "desktop_notifications": desktop,
    }


def parse_keymap(table: Mapping[str, Any]) -> dict[str, str]:
    """Check a `[keymap]` table: every id must exist and every value be a key or a list of keys."""
    known = action_ids()
    result: dict[str, str] = {}
    for binding_id, value in table.items():
        if binding_id not in known:
            raise ConfigError(
                f"[keymap] has no action called '{binding_id}'; "
                "`?` in the TUI lists the action ids."
            )
        keys = [value] if isinstance(value, str) else value
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, str) and k.strip() and "," not in k for k in keys)
        ):
            raise ConfigError(
                f'[keymap] {binding_id} must be a key like "ctrl+r" or a list of keys.'
            )
        for key in keys:
            if not is_key(key.strip()):
                raise ConfigError(
                    f"[keymap] {binding_id}: {key.strip()!r} is no key; write keys like "
                    '"r", "R", "ctrl+r", "pagedown" or "question_mark".'
                )
        result[binding_id] = ",".join(k.strip() for k in keys)
    return result


#: Modifiers a terminal can report with a key.
_MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})


def is_key(spec: str) -> bool:
    """True for a key as Textual names it: modifiers joined by "+" to one key, the key one
    character, a named key ("pagedown", "f5", "space") or a character's name ("question_mark")."""
    *modifiers, name = spec.split("+")
    if not name or any(m not in _MODIFIERS for m in modifiers):
        return False
    if len(name) == 1:
        return name.isprintable() and not name.isspace()
    if name in _NAMED_KEYS:
        return True
    unicode_name = _UNICODE_NAMES.get(name, name)
    try:
        unicodedata.lookup(unicode_name.replace("_", " ").upper())
    except KeyError:
        return False
    return True


#: Textual's short names of characters ("slash") back to their Unicode names ("solidus").
_UNICODE_NAMES = {short: long for long, short in KEY_NAME_REPLACEMENTS.items()}
_NAMED_KEYS = frozenset(
    {key.value.rpartition("+")[2] for key in Keys} | {"space", "tab", "enter", "backspace"}
)


def check_setting(key: tuple[str, ...], value: Any) -> str | None:
    """Why one `[tui]` or `[keymap]` setting cannot be used (a sentence), or None when it can.

    For settings delivered from elsewhere (the tenant's managed keys), checked one by one so a
    bad key is left out without its neighbours."""
    if len(key) != 2 or key[0] not in ("tui", "keymap"):
        return f"{'.'.join(key)} is no TUI setting (tui.* and keymap.* are)."
    try:
        if key[0] == "tui":
            TuiConfig.from_mapping({key[1]: value}, None, drafts_dir=Path())
        else:
            parse_keymap({key[1]: value})
    except ConfigError as exc:
        return str(exc)
    return None
