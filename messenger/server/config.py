"""Server settings: one object handed to `create_app`, filled by the CLI or by tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Argon2Params:
    """argon2id cost; the defaults are argon2-cffi's recommended ones, tests lower them."""

    time_cost: int = 3
    memory_cost: int = 65536
    parallelism: int = 4


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
    stream_queue_limit: int = 10000
    stream_recheck_interval: float = 30.0
    login_max_failures: int = 5
    auto_migrate: bool = True
    argon2: Argon2Params = field(default_factory=Argon2Params)
    clock: Callable[[], dt.datetime] = utcnow
    node_name: str = "node"
