"""The delegate mailbox REST API (`medbridge api serve`): FastAPI over `med.DelegateSession`.

Modules by reason to change: `app` (assembly, OpenAPI), `settings`, `auth/` (Negotiate,
bearer JWTs, API keys), `identity` (whose identity reaches Exchange), `routes/` (one module
per resource), `problems` (med errors → RFC 9457), `ids` (ids on the wire), `convert` (JSON →
med values), `limits`, `accesslog`, `idempotency`, `changes` (the change feed), `webhooks`
and `signing`.
"""

from __future__ import annotations

from bridge.api.app import create_app
from bridge.api.settings import ApiSettings, SettingsError, load_settings

__all__ = ["ApiSettings", "SettingsError", "create_app", "load_settings"]
