"""One settings model for every `medbridge` command, read once from all its sources.

Sources, each overriding the one before:

1. the user's TOML file: `--config`, else `MEDBRIDGE_CONFIG`, else `config.toml` in the XDG
   config directory (`bridge.paths.config_file`);
2. environment variables `MEDBRIDGE_<TABLE>__<KEY>`, `__` separating the levels
   (`MEDBRIDGE_TUI__PAGE_SIZE=50` is `[tui] page_size = 50`); a value is read as a TOML value
   when it is one (`50`, `true`, `["a", "b"]`), else as text;
3. managed configuration: the keys the user's messenger tenant delivers (`managed/tenant.json`
   in the data directory, written by `bridge.managed_config`), then, as MDM/EMM systems deliver
   it to a device, the system-wide `managed.toml` and an AppConfig-style `managed.json` (an
   object of dotted keys, or nested objects) in `/etc/medbridge` (`MEDBRIDGE_MANAGED_DIR` names
   another directory, for packaging and tests). Managed keys win over the user's and are
   *locked*: shown so by
   `medbridge config show` and `medbridge locate`, and refused by the commands that change
   settings.

The merged document has the file's shape (`[med]`, `[tui]`, `[keymap]`, ...); its owners read
their tables as typed values (`med.config.profiles_in`, `tui.config.TuiConfig.from_mapping`).
"""

from __future__ import annotations

import enum
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import paths

__all__ = [
    "ENV_PREFIX",
    "ENV_SEPARATOR",
    "Setting",
    "Settings",
    "SettingsError",
    "Source",
    "load",
]

ENV_PREFIX = "MEDBRIDGE_"
ENV_SEPARATOR = "__"

Key = tuple[str, ...]


class SettingsError(ValueError):
    """A settings source cannot be used; the message names the file or variable and why."""


class Source(enum.StrEnum):
    """Where a value came from, weakest first."""

    FILE = "file"
    ENVIRONMENT = "environment"
    MANAGED = "managed"


@dataclass(frozen=True)
class Setting:
    """One effective value and where it came from (a file path or a variable name)."""

    key: Key
    value: Any
    source: Source
    origin: str

    @property
    def name(self) -> str:
        """The dotted name (`tui.page_size`), as `medbridge config` shows and takes it."""
        return ".".join(self.key)

    @property
    def locked(self) -> bool:
        """Set by the administrator's managed configuration: the user cannot change it."""
        return self.source is Source.MANAGED


@dataclass(frozen=True)
class Settings:
    """The merged settings of every source, with each value's origin."""

    user_file: Path
    managed_files: tuple[Path, ...]
    values: Mapping[Key, Setting] = field(default_factory=dict)

    def table(self, *key: str) -> dict[str, Any]:
        """The merged table at `key` (e.g. `table("tui")`) as nested dicts; empty if absent."""
        out: dict[str, Any] = {}
        depth = len(key)
        for full, setting in self.values.items():
            if full[:depth] != key or len(full) == depth:
                continue
            node = out
            for part in full[depth:-1]:
                node = node.setdefault(part, {})
            node[full[-1]] = setting.value
        return out

    def get(self, *key: str) -> Setting | None:
        return self.values.get(tuple(key))

    def locked(self, *key: str) -> bool:
        """Whether the administrator set `key` or anything below it (a managed profile)."""
        depth = len(key)
        return any(s.locked and k[:depth] == key for k, s in self.values.items())

    def __iter__(self) -> Iterator[Setting]:
        return iter(sorted(self.values.values(), key=lambda s: s.key))


def managed_dir() -> Path:
    """Where managed configuration is delivered: `/etc/medbridge` unless overridden."""
    return Path(os.environ.get("MEDBRIDGE_MANAGED_DIR") or "/etc/medbridge")


def tenant_managed_file() -> Path:
    """The messenger tenant's app configuration for this user (`medbridge config sync-managed`)."""
    return paths.data_dir() / "managed" / "tenant.json"


def managed_files() -> tuple[Path, Path, Path]:
    """The tenant's delivered keys, the device's managed TOML file and its AppConfig-style JSON
    file, weakest first (the device's administrator wins over the tenant's)."""
    directory = managed_dir()
    return tenant_managed_file(), directory / "managed.toml", directory / "managed.json"


def load(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    managed: tuple[Path, ...] | None = None,
    creating: bool = False,
) -> Settings:
    """Read every source once and merge them. A file named explicitly (`config_file`, or
    `--config`) must exist, as a typo there would otherwise run on defaults; `creating` allows
    it for the commands that write the file.

    Raises:
        SettingsError: a file is missing, unreadable or not valid TOML/JSON, or a variable is
            misnamed.
    """
    user_file = config_file or paths.config_file()
    named = config_file is not None or paths.config_file_named()
    if named and not creating and not user_file.exists():
        raise SettingsError(f"The configuration file {user_file} does not exist.")
    managed = managed if managed is not None else managed_files()
    values: dict[Key, Setting] = {}

    def put(doc: Mapping[str, Any], source: Source, origin: str) -> None:
        for key, value in _leaves(doc):
            # A deeper or shallower entry of another source is replaced, not mixed in.
            for other in [k for k in values if _overlaps(k, key)]:
                del values[other]
            values[key] = Setting(key, value, source, origin)

    put(_read_toml(user_file), Source.FILE, str(user_file))
    for name, key, value in _environment(os.environ if environ is None else environ):
        put(_nested(key, value), Source.ENVIRONMENT, name)
    for path in managed:
        doc = _read_json(path) if path.suffix == ".json" else _read_toml(path)
        put(doc, Source.MANAGED, str(path))
    return Settings(user_file=user_file, managed_files=tuple(managed), values=values)


def parse_value(raw: str) -> Any:
    """A TOML value if `raw` is one (`50`, `true`, `["a"]`, `"quoted"`), else the text itself."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def split_name(name: str) -> Key:
    """`tui.page_size` -> ("tui", "page_size").

    Raises:
        SettingsError: an empty part.
    """
    key = tuple(part.strip() for part in name.split("."))
    if not all(key):
        raise SettingsError(f"{name!r} is no setting name; write it like tui.page_size.")
    return key


# --------------------------------------------------------------------------- sources


def _read_toml(path: Path) -> dict[str, Any]:
    from med.config import read_toml
    from med.errors import InvalidInput

    try:
        return read_toml(path)
    except InvalidInput as exc:
        raise SettingsError(str(exc)) from exc


def _read_json(path: Path) -> dict[str, Any]:
    """An AppConfig-style JSON object: dotted keys (`"tui.page_size": 50`) or nested objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"Cannot read the configuration file {path}: {exc.strerror}.") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"The configuration file {path} is not valid JSON: {exc}.") from exc
    if not isinstance(doc, dict):
        raise SettingsError(f"The configuration file {path} must hold one JSON object.")
    out: dict[str, Any] = {}
    for name, value in doc.items():
        try:
            key = split_name(str(name))
        except SettingsError as exc:
            raise SettingsError(f"{path}: {exc}") from None
        _merge(out, _nested(key, value))
    return out


def _environment(environ: Mapping[str, str]) -> Iterator[tuple[str, Key, Any]]:
    """`MEDBRIDGE_TUI__PAGE_SIZE=50` -> ("tui", "page_size"), 50. Variables without `__`
    (MEDBRIDGE_CONFIG, MEDBRIDGE_PASSWORD, ...) are no settings."""
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        key = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split(ENV_SEPARATOR))
        if not all(key):
            raise SettingsError(
                f"{name} is no settings variable; write it like MEDBRIDGE_TUI__PAGE_SIZE."
            )
        yield name, key, parse_value(environ[name])


def _leaves(doc: Mapping[str, Any], prefix: Key = ()) -> Iterator[tuple[Key, Any]]:
    for name, value in doc.items():
        key = (*prefix, str(name))
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, key)
        else:
            yield key, value


def _nested(key: Key, value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {key[-1]: value}
    for part in reversed(key[:-1]):
        doc = {part: doc}
    return doc


def _merge(into: dict[str, Any], doc: Mapping[str, Any]) -> None:
    for name, value in doc.items():
        if isinstance(value, Mapping) and isinstance(into.get(name), dict):
            _merge(into[name], value)
        else:
            into[name] = value


def _overlaps(a: Key, b: Key) -> bool:
    depth = min(len(a), len(b))
    return a[:depth] == b[:depth]
