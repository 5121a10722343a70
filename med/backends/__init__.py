"""Backends by name. A backend's library (exchangelib, O365) is imported only when chosen."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from med.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from med.backends.base import Backend
    from med.model import Profile

__all__ = ["BACKENDS", "backend_class", "create_backend"]

#: name → "module:class"; the module is imported on first use.
BACKENDS = {
    "ews": "med.backends.ews:EwsBackend",
    "graph": "med.backends.graph:GraphBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class implementing backend `name`.

    Raises:
        InvalidInput: unknown name, or the backend's extra is not installed.
    """
    try:
        target = BACKENDS[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}."
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInput(
            f"The {name} backend is not available here ({exc.name} is not installed); "
            f"install medbridge[{name}]."
        ) from exc
    cls: type[Backend] = getattr(module, class_name)
    return cls


def create_backend(
    profile: Profile, *, password: str | None = None, token_cache: Path | None = None
) -> Backend:
    """A backend connected (lazily) as the profile says.

    `password` serves Basic, NTLM and a Kerberos login without a ticket cache; OAuth profiles
    take their tokens from MSAL's cache file `token_cache` (None: in memory only).

    Raises:
        InvalidInput: unknown backend or incomplete profile.
    """
    cls = backend_class(profile.backend)
    factory = getattr(cls, "from_profile")  # noqa: B009 - the protocol has no constructor
    backend: Backend = factory(profile, password=password, token_cache=token_cache)
    return backend
