"""Connection profiles in the medbridge TOML file: where and as whom to connect.

The file's path comes from the caller; med does not know the application's paths. The
`medbridge` command merges the file with its other settings sources (`bridge.settings`) and
hands the `[med]` table to `profiles_in`/`choose_profile`; `save_profile`/`remove_profile`
change the user's file. Profiles live under `[med.profiles.<name>]`, the default profile's name
in `[med] default_profile`; every other table of the file is kept as it is.
Passwords are never written: they come from the environment or a prompt at run time.

Example::

    [med]
    default_profile = "buero"

    [med.profiles.buero]
    server = "https://mail.musterstadt.example/EWS/Exchange.asmx"
    user = "assistenz@musterstadt.example"
    auth = "ntlm"
    backend = "ews"
    mailboxes = ["chef@musterstadt.example", "functional:poststelle@musterstadt.example"]
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from med.auth import sign_in
from med.errors import InvalidInput, NotFound
from med.model import AuthMethod, Profile

__all__ = [
    "choose_profile",
    "default_profile_in",
    "default_profile_name",
    "dump_toml",
    "load_profile",
    "load_profiles",
    "profile_from_mapping",
    "profiles_in",
    "read_toml",
    "remove_profile",
    "save_profile",
    "update_file",
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FIELDS = {f.name for f in dataclasses.fields(Profile)} - {"name"}


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in `path` (empty when the file does not exist).

    Raises:
        InvalidInput: the file is unreadable or not valid TOML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidInput(f"Cannot read the configuration file {path}: {exc.strerror}.") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"The configuration file {path} is not valid TOML: {exc}.") from exc


def _med_table(doc: Mapping[str, Any]) -> dict[str, Any]:
    med = doc.get("med", {})
    return med if isinstance(med, dict) else {}


def profile_from_mapping(name: str, values: Mapping[str, Any]) -> Profile:
    """A Profile from a TOML table.

    Raises:
        InvalidInput: unknown keys, missing server/user, or an invalid value.
    """
    unknown = set(values) - _FIELDS
    if unknown:
        raise InvalidInput(f"Profile {name!r} has unknown settings: {', '.join(sorted(unknown))}.")
    if not values.get("user") or "@" not in str(values.get("user")):
        raise InvalidInput(f"Profile {name!r} needs `user`, an e-mail address.")
    if not values.get("server") and not values.get("autodiscover"):
        raise InvalidInput(f"Profile {name!r} needs `server` (the EWS URL) or autodiscover.")
    kwargs: dict[str, Any] = dict(values)
    backend = kwargs.get("backend", "ews")
    if backend not in ("ews", "graph"):
        raise InvalidInput(f"Profile {name!r}: backend must be ews or graph.")
    default_auth = "oauth" if backend == "graph" else "ntlm"
    try:
        kwargs["auth"] = AuthMethod(str(values.get("auth", default_auth)).lower())
    except ValueError:
        choices = ", ".join(m.value for m in AuthMethod)
        raise InvalidInput(f"Profile {name!r}: auth must be one of {choices}.") from None
    try:
        sign_in(kwargs["auth"], backend)
    except InvalidInput as exc:
        raise InvalidInput(f"Profile {name!r}: {exc}") from None
    kwargs["mailboxes"] = tuple(str(m) for m in values.get("mailboxes", ()))
    kwargs["user"] = str(values["user"]).lower()
    try:
        return Profile(name=name, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"Profile {name!r} is not valid: {exc}.") from exc


def setting_problem(key: tuple[str, ...], value: Any, med: Mapping[str, Any]) -> str | None:
    """Why `value` cannot stand at `key` of the `[med]` table (a sentence), or None.

    For a change made one entry at a time (`medbridge config set med.…`): a profile is checked
    with this entry in it, and what it still lacks (`user`, `server`) is not held against it,
    so a profile can be written key by key while each wrong value is refused at once.
    """
    where = ".".join(("med", *key))
    if key == ("default_profile",):
        return None if isinstance(value, str) and value else f"{where} must be a profile's name."
    if len(key) != 3 or key[0] != "profiles":
        return f"{where} is no med setting (med.default_profile and med.profiles.<name>.<key> are)."
    name, entry = key[1], key[2]
    profiles = med.get("profiles", {})
    current = profiles.get(name, {}) if isinstance(profiles, Mapping) else {}
    values = {**(current if isinstance(current, Mapping) else {}), entry: value}
    placeholders = {"user": "someone@example.invalid", "server": "https://example.invalid/EWS"}
    try:
        profile_from_mapping(
            name, {k: v for k, v in placeholders.items() if k not in values} | values
        )
    except InvalidInput as exc:
        return str(exc)
    return None


def profiles_in(med: Mapping[str, Any], origin: str = "the settings") -> dict[str, Profile]:
    """The profiles of a `[med]` table, however the caller assembled it (file, environment,
    managed configuration).

    Raises:
        InvalidInput: a profile is invalid.
    """
    profiles = med.get("profiles", {})
    if not isinstance(profiles, Mapping):
        raise InvalidInput(f"[med.profiles] in {origin} must be a table.")
    return {
        name: profile_from_mapping(name, values)
        for name, values in profiles.items()
        if isinstance(values, Mapping)
    }


def default_profile_in(med: Mapping[str, Any]) -> str | None:
    """The name under `[med] default_profile`, or the only profile, or None."""
    name = med.get("default_profile")
    if isinstance(name, str) and name:
        return name
    profiles = med.get("profiles", {})
    if isinstance(profiles, Mapping) and len(profiles) == 1:
        return str(next(iter(profiles)))
    return None


def choose_profile(med: Mapping[str, Any], name: str | None = None) -> Profile:
    """One profile of a `[med]` table: by name, else the default one.

    Raises:
        NotFound: no profile named and no default (the message says how to add or choose one).
        InvalidInput: no profile of that name (the message lists them), or a profile is invalid.
    """
    profiles = profiles_in(med)
    chosen = name or default_profile_in(med)
    if chosen is None:
        if not profiles:
            raise NotFound("No profile yet; add one with `medbridge profile add`.")
        raise NotFound(
            f"Several profiles ({', '.join(sorted(profiles))}); choose one with --profile."
        )
    try:
        return profiles[chosen]
    except KeyError:
        # A misspelt name is a usage error, not a missing mailbox object: say what exists.
        known = ", ".join(sorted(profiles)) if profiles else "none yet (`medbridge profile add`)"
        raise InvalidInput(f"No profile named {chosen!r}; the profiles are: {known}.") from None


def load_profiles(path: Path) -> dict[str, Profile]:
    """All profiles in the file (none when it does not exist).

    Raises:
        InvalidInput: the file is unreadable or a profile is invalid.
    """
    return profiles_in(_med_table(read_toml(path)), str(path))


def default_profile_name(path: Path) -> str | None:
    """The file's default profile (see `default_profile_in`)."""
    return default_profile_in(_med_table(read_toml(path)))


def load_profile(path: Path, name: str | None = None) -> Profile:
    """One profile of the file: by name, else the default one (see `choose_profile`)."""
    return choose_profile(_med_table(read_toml(path)), name)


def save_profile(path: Path, profile: Profile, *, make_default: bool = False) -> None:
    """Add or replace a profile, keeping everything else in the file.

    Raises:
        InvalidInput: an invalid profile name, or the file cannot be written.
    """
    if not _NAME.match(profile.name):
        raise InvalidInput("Profile names use letters, digits, - and _ only (up to 64).")
    doc = read_toml(path)
    med = doc.setdefault("med", {})
    profiles = med.setdefault("profiles", {})
    values: dict[str, Any] = {}
    defaults = Profile(name="x", server="", user="")
    for f in dataclasses.fields(Profile):
        if f.name == "name":
            continue
        value = getattr(profile, f.name)
        if f.name in ("server", "user") or value != getattr(defaults, f.name):
            values[f.name] = list(value) if isinstance(value, tuple) else value
    values["auth"] = profile.auth.value
    profiles[profile.name] = values
    if make_default or "default_profile" not in med:
        med["default_profile"] = profile.name
    _write(path, doc)


def remove_profile(path: Path, name: str) -> None:
    """Remove a profile.

    Raises:
        NotFound: no such profile.
    """
    doc = read_toml(path)
    med = _med_table(doc)
    profiles = med.get("profiles", {})
    if name not in profiles:
        raise NotFound(f"No profile named {name!r}.")
    del profiles[name]
    if med.get("default_profile") == name:
        del med["default_profile"]
    _write(path, doc)


def update_file(path: Path, key: tuple[str, ...], value: Any) -> None:
    """Set one value (None removes it) in the TOML file, keeping everything else.

    Raises:
        InvalidInput: the file cannot be read or written, or a part of `key` is no table.
    """
    doc = read_toml(path)
    node = doc
    for part in key[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InvalidInput(f"{'.'.join(key)}: {part} is a value in {path}, not a table.")
        node = child
    if value is None:
        node.pop(key[-1], None)
    else:
        node[key[-1]] = value
    _write(path, doc)


def _write(path: Path, doc: Mapping[str, Any]) -> None:
    text = dump_toml(doc)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except OSError as exc:
        raise InvalidInput(f"Cannot write the configuration file {path}: {exc.strerror}.") from exc


# --------------------------------------------------------------------------- TOML writing


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise InvalidInput(f"Cannot write {type(value).__name__} values to TOML.")


def dump_toml(doc: Mapping[str, Any], prefix: str = "") -> str:
    """TOML text for a document as `tomllib` reads it (comments are not kept)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for entry in value:
                lines.append("")
                lines.append(f"[[{prefix}{_key(key)}]]")
                lines.append(dump_toml(entry, f"{prefix}{_key(key)}.").strip("\n"))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    out = "\n".join(lines)
    for key, table in tables:
        name = f"{prefix}{_key(key)}"
        body = dump_toml(table, f"{name}.")
        has_scalars = any(not isinstance(v, dict) for v in table.values())
        header = f"\n\n[{name}]\n" if has_scalars or not table else "\n"
        out += header + body.lstrip("\n")
    return out.lstrip("\n") + ("\n" if out and not out.endswith("\n") else "")
