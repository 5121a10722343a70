"""The notification bridge: mailbox events into the messenger, actions back, exactly once.

Modules by reason to change: `config` (TOML settings), `rules` (what goes where), `store`
(database and numbered migrations), `watcher` (sync, streaming, pull), `render` (message text),
`outbox` (exactly-once posting), `chat` (the bridge's messenger device and routes), `actions`
(commands from chat, authorised), `leases` (workers sharing mailboxes), `health` (states,
/healthz, /metrics), `transient` (what is retried), `runner` (one worker composed of them).
"""

from bridge.notify.config import BridgeConfig, ConfigError, load_config, parse_config
from bridge.notify.health import MailboxState
from bridge.notify.runner import BridgeWorker

__all__ = [
    "BridgeConfig",
    "BridgeWorker",
    "ConfigError",
    "MailboxState",
    "load_config",
    "parse_config",
]
