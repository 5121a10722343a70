"""Server settings: one object handed to `create_app`, filled by the CLI or by tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# How uvicorn serves the messenger. The stream carries ciphertext, which never compresses, so
# permessage-deflate would cost CPU on every frame and a compressor per connection for nothing.
# Clients send only a hello and acks, hence the small frame limit.
UVICORN_OPTIONS: dict[str, object] = {
    "ws_per_message_deflate": False,
    "ws_max_size": 2 * 1024 * 1024,
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Argon2Params:
    """argon2id cost; the defaults are argon2-cffi's recommended ones, tests lower them."""

    time_cost: int = 3
    memory_cost: int = 65536
    parallelism: int = 4


@dataclass
class LoginLimits:
    """Login throttling: failures per account and per client address in `window` seconds,
    failures across the instance in `global_window` (counted in Redis when configured, so
    every node sees them), and how many argon2 hashes run at once and may wait."""

    account_failures: int = 10
    address_failures: int = 100
    window: float = 900.0
    global_failures: int = 1000
    global_window: float = 60.0
    hash_concurrency: int = 2
    hash_queue: int = 256


@dataclass
class ServerSettings:
    database_url: str
    blob_dir: Path
    db_schema: str | None = None
    redis_url: str | None = None
    redis_channel: str = "medbridge:messenger:events"
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 100 * 1024 * 1024
    max_ciphertext_bytes: int = 256 * 1024
    purge_interval: float = 3600.0
    # How often each node's alarm scheduler looks for due repeats and escalations.
    alarm_interval: float = 1.0
    stream_queue_limit: int = 10000
    # Streams replaying history at once (the rest wait their turn, live events queued): a
    # node's restart reconnects every client together, and 100 replays side by side left the
    # node's RSS about 9 MB higher for good; it does one replay's work at a time anyway.
    stream_replays_at_once: int = 8
    # A stream queues at most this many bytes of live events for a slow reader; beyond, it is
    # closed with 1013 and the client resumes from its cursors.
    stream_queue_bytes: int = 8 * 1024 * 1024
    # Before authentication: sockets waiting for their hello, its size and how long it may take.
    stream_preauth_limit: int = 256
    stream_hello_bytes: int = 1024 * 1024
    stream_hello_timeout: float = 5.0
    # Within this time, what nobody published (an admin tool without Redis, a lost pub/sub
    # message) reaches open streams: the node looks twice per interval (stream.recheck_streams).
    stream_recheck_interval: float = 30.0
    login: LoginLimits = field(default_factory=LoginLimits)
    # A session ends this long after login; streams of ended sessions close within
    # `session_check_interval` seconds, whichever node or tool ended them.
    session_ttl: dt.timedelta = dt.timedelta(days=30)
    session_check_interval: float = 0.5
    # Password reset links go out by e-mail (smtp://, smtp+starttls://, smtps://); the link is
    # `reset_link` with {token} replaced. Without smtp_url the reset answers 404.
    # /docs and /openapi.json are off unless enabled; /metrics answers loopback clients, and
    # others that send `Authorization: Bearer <metrics_token>`.
    api_docs: bool = False
    metrics_token: str | None = None
    smtp_url: str | None = None
    smtp_from: str = "messenger@localhost"
    reset_link: str = "medbridge://reset-password?token={token}"
    # Invitations mailed by administrators link here ({token} replaced); the admin portal's
    # accept page is `<public URL>/admin/accept?token={token}`.
    invite_link: str = "medbridge://register?token={token}"
    # Admin portal sessions end after this long without a request, and this long after login.
    portal_idle: dt.timedelta = dt.timedelta(minutes=30)
    portal_lifetime: dt.timedelta = dt.timedelta(hours=8)
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: list[str] = field(default_factory=list)
    # Key-encryption keys of the names sealed at rest (messenger.store.sealing); made on first
    # start when missing. Default: `metadata-keys.json` beside the blob directory. Keep it out
    # of database backups.
    metadata_key_file: Path | None = None
    # Bot webhooks: queued every `webhook_interval` seconds; a failed delivery is tried again
    # after webhook_backoff × 1, 2, 4 … seconds (at most an hour), `webhook_attempts` times
    # in all, then it is a dead letter.
    webhook_interval: float = 1.0
    webhook_attempts: int = 8
    webhook_backoff: float = 5.0
    webhook_timeout: float = 10.0
    auto_migrate: bool = True
    argon2: Argon2Params = field(default_factory=Argon2Params)
    clock: Callable[[], dt.datetime] = utcnow
    node_name: str = "node"


def metadata_key_path(settings: ServerSettings) -> Path:
    return settings.metadata_key_file or settings.blob_dir.parent / "metadata-keys.json"
