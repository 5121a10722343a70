"""Where medbridge keeps its files: one module, so every command agrees (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_path, user_config_path, user_data_path, user_state_path

APP = "medbridge"

_config_override: Path | None = None


def use_config_file(path: Path | None) -> None:
    """`medbridge --config FILE`: every command of this run reads and writes that file."""
    global _config_override
    _config_override = path


def config_file_named() -> bool:
    """Whether `--config` named the settings file: such a file must exist (the XDG one may not)."""
    return _config_override is not None


def config_dir() -> Path:
    return user_config_path(APP)


def config_file() -> Path:
    """The user's TOML settings file: `--config`, else `MEDBRIDGE_CONFIG`, else the XDG one."""
    if _config_override is not None:
        return _config_override
    override = os.environ.get("MEDBRIDGE_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


def data_dir() -> Path:
    return user_data_path(APP)


def state_dir() -> Path:
    return user_state_path(APP)


def cache_dir() -> Path:
    """What can be learnt again from the server and saves asking it: med's folder cache."""
    return user_cache_path(APP)


def token_cache_file() -> Path:
    """One MSAL token cache (0600) for every OAuth profile; `medbridge signin` fills it."""
    return data_dir() / "graph-tokens.json"


def lab_dir() -> Path:
    """The lab's store and Kerberos realm live here so that tickets stay valid across restarts."""
    return data_dir() / "lab"


def all_paths() -> dict[str, Path]:
    return {
        "config": config_file(),
        "data": data_dir(),
        "state": state_dir(),
        "cache": cache_dir(),
        "lab": lab_dir(),
    }
