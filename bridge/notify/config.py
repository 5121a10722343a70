"""The bridge's TOML configuration, validated into typed values with one clear error per mistake.

Example::

    [bridge]
    database = "sqlite:////var/lib/medbridge/bridge.db"   # or postgresql://... (+ database_schema)
    lease_seconds = 15
    admin_room = "user:it@musterstadt.example"

    [messenger]
    server = "https://chat.musterstadt.example"
    user = "bridge@musterstadt.example"
    password_env = "BRIDGE_MESSENGER_PASSWORD"
    keys_passphrase_env = "BRIDGE_KEYS_PASSPHRASE"

    [identities.service]                     # a med profile plus where its secret comes from
    server = "https://mail.musterstadt.example/EWS/Exchange.asmx"
    user = "assistenz@musterstadt.example"
    auth = "ntlm"
    password_env = "BRIDGE_MAIL_PASSWORD"     # or password_file, or auth = "kerberos" + keytab

    [[watch]]
    mailbox = "chef@musterstadt.example"
    folders = ["inbox", "inbox/Projekte/2026"]   # well-known names or paths
    identity = "service"

    [[watch]]
    mailbox = "public"                          # the public folder tree (EWS only)
    folders = ["Verwaltung/Rundschreiben"]
    identity = "service"

    [[rule]]
    name = "boss-important"
    mailbox = "chef@musterstadt.example"
    importance = "high"
    to = ["user:assistenz@musterstadt.example"]
    quiet_hours = "22:00-06:00"
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Literal

from bridge.notify.daysheet import DaySheetSpec, parse_day_sheets
from med import InvalidInput, Profile, WellKnownFolder
from med.config import profile_from_mapping

__all__ = [
    "BridgeConfig",
    "ConfigError",
    "GraphApp",
    "Identity",
    "MessengerSettings",
    "QuietHours",
    "Recipient",
    "RuleSpec",
    "Watch",
    "load_config",
    "parse_config",
]

#: The `mailbox` of a watch on the public folder tree.
PUBLIC = "public"
#: Well-known folder names (which public folders do not have).
WELL_KNOWN = frozenset(f.value for f in WellKnownFolder)
#: What a rule can match an item as; "reminder" is a calendar item's reminder coming due.
ITEM_KINDS = ("mail", "meeting", "appointment", "voicemail", "task", "reminder")
RECIPIENT_KINDS = ("user", "group", "managed")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the table and key."""


@dataclass(frozen=True)
class Recipient:
    """Where a notification goes: a user (direct conversation), a group or a managed group,
    named by e-mail address (user) or conversation name (groups)."""

    kind: Literal["user", "group", "managed"]
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str, where: str) -> Recipient:
        kind, sep, name = str(text).partition(":")
        if not sep or kind not in RECIPIENT_KINDS or not name.strip():
            raise ConfigError(
                f"{where}: recipient {text!r} must be user:ADDRESS, group:NAME or managed:NAME"
            )
        if kind == "user" and "@" not in name:
            raise ConfigError(f"{where}: user recipient {text!r} needs an e-mail address")
        return cls(kind, name.strip().lower() if kind == "user" else name.strip())  # type: ignore[arg-type]


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time of the bridge) in which notifications wait; may pass midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    @classmethod
    def parse(cls, text: str, where: str) -> QuietHours:
        first, sep, second = str(text).partition("-")
        a, b = _TIME.match(first.strip()), _TIME.match(second.strip())
        if not sep or a is None or b is None or first.strip() == second.strip():
            raise ConfigError(f"{where}: quiet_hours {text!r} must look like 22:00-06:00")
        return cls(time(int(a[1]), int(a[2])), time(int(b[1]), int(b[2])))


@dataclass(frozen=True)
class RuleSpec:
    """Which items a rule picks (every given criterion must hold) and where they go."""

    name: str
    to: tuple[Recipient, ...]
    mailbox: str | None = None
    folders: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    importance: str | None = None
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    quiet_hours: QuietHours | None = None
    digest_minutes: float | None = None


@dataclass(frozen=True)
class GraphApp:
    """A Graph identity of the bridge: an app registration signing in with client credentials
    (app-only), and where Graph's change notifications reach the bridge."""

    client_id: str
    tenant: str
    secret_env: str | None = None
    secret_file: Path | None = None
    #: Host the notification listener binds (on a free port); None: delta polling only.
    notification_host: str | None = None
    #: The listener's URL as Graph reaches it (behind a reverse proxy), if not direct.
    notification_url: str | None = None
    #: How often folders are polled with delta queries when no notification can arrive.
    delta_poll_seconds: float = 10.0

    def secret(self, identity: str) -> str:
        return _secret(f"identities.{identity}", self.secret_env, self.secret_file, "client secret")


@dataclass(frozen=True)
class Identity:
    """How the bridge signs in to the mail server for some mailboxes: a med profile and the
    source of its secret (never the secret itself in the file)."""

    name: str
    profile: Profile
    password_env: str | None = None
    password_file: Path | None = None
    keytab: Path | None = None
    ccache: str | None = None
    graph_app: GraphApp | None = None

    def password(self) -> str | None:
        """The secret from the environment or a file; None for Kerberos."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"identities.{self.name}: environment variable {self.password_env} is not set"
                )
            return value
        if self.password_file:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"identities.{self.name}: cannot read password_file: {exc.strerror}"
                ) from exc
        return None


@dataclass(frozen=True)
class Watch:
    """One mailbox the bridge watches, the folders in it, and as whom."""

    mailbox: str
    folders: tuple[str, ...]
    identity: str
    rights_identity: str
    kind: str = "user"  # user, delegated, functional, shared

    @property
    def key(self) -> str:
        return self.mailbox


@dataclass(frozen=True)
class MessengerSettings:
    server: str
    user: str
    password_env: str | None = None
    password_file: Path | None = None
    keys_passphrase_env: str | None = None
    keys_dir: Path | None = None
    key_strength: Literal["moderate", "interactive"] = "moderate"

    def password(self) -> str:
        return _secret("messenger", self.password_env, self.password_file, "password")

    def keys_passphrase(self) -> str:
        if self.keys_passphrase_env is None:
            return self.password()
        return _secret("messenger", self.keys_passphrase_env, None, "keys passphrase")


@dataclass(frozen=True)
class BridgeConfig:
    messenger: MessengerSettings
    identities: Mapping[str, Identity]
    watches: tuple[Watch, ...]
    rules: tuple[RuleSpec, ...]
    database: str
    worker_id: str
    data_dir: Path
    lease_seconds: float = 15.0
    mode: Literal["streaming", "pull"] = "streaming"
    poll_seconds: float = 30.0
    admin_room: Recipient | None = None
    health_listen: str | None = None
    chat_users: Mapping[str, str] = field(default_factory=dict)
    database_schema: str | None = None  # PostgreSQL schema (search_path) of the bridge's tables
    day_sheets: tuple[DaySheetSpec, ...] = ()  # morning day sheets (bridge.notify.daysheet)

    def identity_for(self, name: str) -> Identity:
        return self.identities[name]

    def mailbox_user(self, chat_email: str) -> str:
        """The mailbox address whose rights a chat user acts with (same address by default)."""
        key = chat_email.lower()
        return self.chat_users.get(key, key)


def load_config(path: Path, *, data_dir: Path, worker_id: str | None = None) -> BridgeConfig:
    """Read and validate the file.

    Raises:
        ConfigError: unreadable file, invalid TOML, or an invalid setting (one sentence naming
            the file and the setting).
    """
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return parse_config(doc, data_dir=data_dir, worker_id=worker_id)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse_config(
    doc: Mapping[str, Any], *, data_dir: Path, worker_id: str | None = None
) -> BridgeConfig:
    _only(
        doc,
        "top level",
        {"bridge", "messenger", "identities", "watch", "rule", "chat_users", "day_sheet"},
    )
    bridge = _table(doc, "bridge", required=False)
    _only(
        bridge,
        "bridge",
        {
            "database",
            "database_schema",
            "worker_id",
            "lease_seconds",
            "mode",
            "poll_seconds",
            "admin_room",
            "health_listen",
            "data_dir",
        },
    )
    data = Path(bridge["data_dir"]) if "data_dir" in bridge else data_dir
    messenger = _messenger(_table(doc, "messenger"), data)
    identities = {
        name: _identity(str(name), _as_table(values, f"identities.{name}"))
        for name, values in _table(doc, "identities").items()
    }
    if not identities:
        raise ConfigError("identities: name at least one identity to sign in to the mail server")
    watches = tuple(
        _watch(_as_table(w, f"watch[{i}]"), i, identities)
        for i, w in enumerate(_list(doc, "watch"))
    )
    if not watches:
        raise ConfigError("watch: name at least one mailbox to watch")
    seen: set[str] = set()
    for w in watches:
        if w.mailbox in seen:
            raise ConfigError(f"watch: mailbox {w.mailbox} is listed twice; list its folders once")
        seen.add(w.mailbox)
    rules = tuple(_rule(_as_table(r, f"rule[{i}]"), i) for i, r in enumerate(_list(doc, "rule")))
    if not rules:
        raise ConfigError("rule: without a rule nothing is ever posted; add at least one")
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError("rule: rule names must be unique")
    mode = str(bridge.get("mode", "streaming"))
    if mode not in ("streaming", "pull"):
        raise ConfigError("bridge.mode must be streaming or pull")
    lease = _number(bridge, "bridge", "lease_seconds", 15.0, minimum=2.0)
    poll = _number(bridge, "bridge", "poll_seconds", 30.0, minimum=0.2)
    admin = bridge.get("admin_room")
    chat_users = _table(doc, "chat_users", required=False)
    return BridgeConfig(
        messenger=messenger,
        identities=identities,
        watches=watches,
        rules=rules,
        database=str(bridge.get("database") or f"sqlite:///{data / 'bridge.db'}"),
        worker_id=worker_id or str(bridge.get("worker_id") or _default_worker_id()),
        data_dir=data,
        lease_seconds=lease,
        mode=mode,  # type: ignore[arg-type]
        poll_seconds=poll,
        admin_room=Recipient.parse(str(admin), "bridge.admin_room") if admin else None,
        health_listen=str(bridge["health_listen"]) if bridge.get("health_listen") else None,
        chat_users={str(k).lower(): str(v).lower() for k, v in chat_users.items()},
        database_schema=_opt_str(bridge, "database_schema"),
        day_sheets=parse_day_sheets(
            _list(doc, "day_sheet"),
            {w.mailbox for w in watches},
            lambda text, where: Recipient.parse(text, where).key,
            ConfigError,
        ),
    )


# --------------------------------------------------------------------------- tables


def _messenger(values: Mapping[str, Any], data: Path) -> MessengerSettings:
    _only(
        values,
        "messenger",
        {
            "server",
            "user",
            "password_env",
            "password_file",
            "keys_passphrase_env",
            "keys_dir",
            "key_strength",
        },
    )
    for key in ("server", "user"):
        if not values.get(key):
            raise ConfigError(f"messenger.{key} is required")
    if not (values.get("password_env") or values.get("password_file")):
        raise ConfigError("messenger: give password_env or password_file for the bridge's account")
    strength = str(values.get("key_strength", "moderate"))
    if strength not in ("moderate", "interactive"):
        raise ConfigError("messenger.key_strength must be moderate or interactive")
    return MessengerSettings(
        server=str(values["server"]).rstrip("/"),
        user=str(values["user"]).lower(),
        password_env=_opt_str(values, "password_env"),
        password_file=_opt_path(values, "password_file"),
        keys_passphrase_env=_opt_str(values, "keys_passphrase_env"),
        keys_dir=_opt_path(values, "keys_dir") or data / "devices",
        key_strength=strength,  # type: ignore[arg-type]
    )


_SECRET_KEYS = {"password_env", "password_file", "keytab", "ccache"}
_GRAPH_APP_KEYS = {
    "client_id",
    "tenant",
    "client_secret_env",
    "client_secret_file",
    "notification_host",
    "notification_url",
    "delta_poll_seconds",
}


def _identity(name: str, values: Mapping[str, Any]) -> Identity:
    bridge_keys = _SECRET_KEYS | _GRAPH_APP_KEYS
    profile_values = {k: v for k, v in values.items() if k not in bridge_keys}
    try:
        profile = profile_from_mapping(name, profile_values)
    except InvalidInput as exc:
        raise ConfigError(f"identities.{name}: {exc}") from exc
    identity = Identity(
        name=name,
        profile=profile,
        password_env=_opt_str(values, "password_env"),
        password_file=_opt_path(values, "password_file"),
        keytab=_opt_path(values, "keytab"),
        ccache=_opt_str(values, "ccache"),
        graph_app=_graph_app(name, values) if profile.backend == "graph" else None,
    )
    if profile.backend != "graph" and _GRAPH_APP_KEYS & set(values):
        given = ", ".join(sorted(_GRAPH_APP_KEYS & set(values)))
        raise ConfigError(f'identities.{name}: {given} only go with backend = "graph"')
    kerberos = profile.auth.value == "kerberos"
    if identity.graph_app is not None:
        if identity.password_env or identity.password_file:
            raise ConfigError(
                f"identities.{name}: a Graph identity signs in with its client secret, "
                "not a password"
            )
    elif not kerberos and not (identity.password_env or identity.password_file):
        raise ConfigError(
            f"identities.{name}: give password_env or password_file "
            f'(or auth = "kerberos" with a keytab or ticket cache)'
        )
    if identity.keytab is not None and not kerberos:
        raise ConfigError(f'identities.{name}: keytab only goes with auth = "kerberos"')
    if identity.keytab is not None and not os.access(identity.keytab, os.R_OK):
        raise ConfigError(f"identities.{name}: keytab {identity.keytab} cannot be read")
    return identity


def _graph_app(name: str, values: Mapping[str, Any]) -> GraphApp:
    where = f"identities.{name}"
    if not (
        values.get("client_id")
        and values.get("tenant")
        and (values.get("client_secret_env") or values.get("client_secret_file"))
    ):
        raise ConfigError(
            f"{where}: the bridge signs in to Graph as an app (client credentials): give "
            "client_id, tenant and client_secret_env or client_secret_file"
        )
    return GraphApp(
        client_id=str(values["client_id"]),
        tenant=str(values["tenant"]),
        secret_env=_opt_str(values, "client_secret_env"),
        secret_file=_opt_path(values, "client_secret_file"),
        notification_host=_opt_str(values, "notification_host"),
        notification_url=_opt_str(values, "notification_url"),
        delta_poll_seconds=_number(values, where, "delta_poll_seconds", 10.0, minimum=0.2),
    )


def _watch(values: Mapping[str, Any], index: int, identities: Mapping[str, Identity]) -> Watch:
    where = f"watch[{index}]"
    _only(values, where, {"mailbox", "folders", "identity", "rights_identity", "kind"})
    mailbox = str(values.get("mailbox", "")).strip().lower()
    public = mailbox == PUBLIC
    if not public and "@" not in mailbox:
        raise ConfigError(f'{where}: mailbox must be an e-mail address (or "{PUBLIC}")')
    folders = tuple(
        _folder_path(str(f), where) for f in _list(values, "folders", where) or ["inbox"]
    )
    identity = str(values.get("identity", ""))
    if identity not in identities:
        raise ConfigError(f"{where}: identity {identity!r} is not defined under [identities]")
    if public:
        if identities[identity].profile.backend == "graph":
            raise ConfigError(
                f"{where}: Microsoft Graph has no public folders (unsupported); "
                "watch them with an EWS identity"
            )
        if "folders" not in values:
            raise ConfigError(f'{where}: name the public folders by path, e.g. ["Verwaltung"]')
        for folder in folders:
            if folder.split("/")[0].lower() in WELL_KNOWN:
                raise ConfigError(
                    f"{where}: the public folders have no {folder!r}; "
                    'name a public folder by its path, e.g. "Verwaltung/Rundschreiben"'
                )
    rights = str(values.get("rights_identity", identity))
    if rights not in identities:
        raise ConfigError(f"{where}: rights_identity {rights!r} is not defined under [identities]")
    kind = str(values.get("kind", "user"))
    if kind not in ("user", "delegated", "functional", "shared"):
        raise ConfigError(f"{where}: kind must be user, delegated, functional or shared")
    return Watch(mailbox, folders, identity, rights, kind)


def _folder_path(text: str, where: str) -> str:
    """A well-known name (inbox) or a path of display names below the mailbox's top or below a
    well-known folder (`inbox/Projekte/2026`, `Verwaltung/Rundschreiben`); which folders exist
    only the server knows (an unknown path is reported when the watch starts)."""
    parts = text.strip().strip("/").split("/")
    if not text.strip() or any(not p.strip() for p in parts):
        raise ConfigError(f"{where}: folder {text!r} is no folder path (e.g. inbox/Projekte/2026)")
    return "/".join(p.strip() for p in parts)


def _rule(values: Mapping[str, Any], index: int) -> RuleSpec:
    where = f"rule[{index}]"
    _only(
        values,
        where,
        {
            "name",
            "to",
            "mailbox",
            "folders",
            "senders",
            "importance",
            "categories",
            "keywords",
            "kinds",
            "quiet_hours",
            "digest_minutes",
        },
    )
    name = str(values.get("name") or f"rule-{index}")
    to = tuple(Recipient.parse(str(t), where) for t in _list(values, "to", where))
    if not to:
        raise ConfigError(f"{where}: `to` needs at least one recipient")
    importance = values.get("importance")
    if importance is not None and str(importance).lower() not in ("low", "normal", "high"):
        raise ConfigError(f"{where}: importance must be low, normal or high")
    kinds = tuple(str(k) for k in _list(values, "kinds", where))
    for kind in kinds:
        if kind not in ITEM_KINDS:
            raise ConfigError(f"{where}: kind {kind!r} is not one of {', '.join(ITEM_KINDS)}")
    quiet = values.get("quiet_hours")
    digest = values.get("digest_minutes")
    if digest is not None and (not isinstance(digest, int | float) or digest <= 0):
        raise ConfigError(f"{where}: digest_minutes must be a positive number")
    return RuleSpec(
        name=name,
        to=to,
        mailbox=str(values["mailbox"]).lower() if values.get("mailbox") else None,
        folders=tuple(str(f).lower() for f in _list(values, "folders", where)),
        senders=tuple(str(s).lower() for s in _list(values, "senders", where)),
        importance=str(importance).lower() if importance is not None else None,
        categories=tuple(str(c) for c in _list(values, "categories", where)),
        keywords=tuple(str(k).lower() for k in _list(values, "keywords", where)),
        kinds=kinds,
        quiet_hours=QuietHours.parse(str(quiet), where) if quiet else None,
        digest_minutes=float(digest) if digest is not None else None,
    )


# --------------------------------------------------------------------------- small readers


def _secret(where: str, env: str | None, file: Path | None, what: str) -> str:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{where}: environment variable {env} ({what}) is not set")
        return value
    if file:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the {what} file: {exc.strerror}") from exc
    raise ConfigError(f"{where}: no source for the {what}")


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _only(values: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = set(values) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")


def _as_table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    return value


def _table(doc: Mapping[str, Any], key: str, *, required: bool = True) -> Mapping[str, Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ConfigError(f"[{key}] is missing")
        return {}
    return _as_table(value, key)


def _list(doc: Mapping[str, Any], key: str, where: str | None = None) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where + '.' if where else ''}{key} must be a list")
    return value


def _number(
    values: Mapping[str, Any], where: str, key: str, default: float, *, minimum: float
) -> float:
    value = values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a number ≥ {minimum}")
    return float(value)


def _opt_str(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    return str(value) if value else None


def _opt_path(values: Mapping[str, Any], key: str) -> Path | None:
    value = values.get(key)
    return Path(str(value)).expanduser() if value else None
