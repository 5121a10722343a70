"""The TUI's connection to the messenger: one end-to-end encrypted account per profile.

No widgets here. A `MessengerConnection` logs one account in (`messenger.client`), keeps this
computer's device keys and protocol state in the account's state directory, runs the event
stream and turns what arrives into typed Textual messages (`tui.messages`) handed to `post`
(the app's `post_message`). Screens read the connection's plain model (`conversations`) in their
handlers; they never touch the stream.

    hub = MessengerHub(post=app.post_message)
    hub.add(account)                      # one MessengerAccount per profile
    app.run_worker(hub.get("demo").run(), group="messenger")   # MedApp.start_messenger does it

Public interface (a profile's connection is `hub.get(profile)`; every message names `profile`):

- `MessengerAccount.from_mapping(profile, values, state_dir=, environ=)`: the
  `[messenger.<profile>]` settings table (`server`, `user`, `password_env` or
  `password_file`, `device_name`).
- `MessengerConnection.run()`: log in, load or register the device, then stream until cancelled;
  reconnects by itself. Cancelling the task (the app's worker) ends it at once.
- State: `state` (`ConnectionState`), `user_id`, `branding` (`Branding`), `conversations`
  (id → `Conversation`, each with `lines`, `unread`, `kind`, `title`), `outbox` (queued sends).
- Sending (queued while offline, persisted sealed to the device keys, flushed on reconnect):
  `send_text(cid, text, reply_to=)`, `send_file(cid, path)`, `send_voice(cid, path)`,
  `send_location(cid, lat, lon, accuracy_m)`, `react(cid, seq, emoji)`; `mark_read(cid)`
  (not async: the count drops at once, the receipt goes out beside the stream).
- Attachments: `fetch(ref)` → decrypted bytes.
- Verification: `safety_number(user_id)`, `my_devices()` (`DeviceTrust` list),
  `approve_device(device_id)`, `holds_master_key`.
- `start_direct(email)` → conversation id; `name_of(user_id)`.
- Hooks for other features: `add_event_hook(hook)`: `hook(connection, event)` is awaited for
  every raw stream event in stream order (alarms: `messenger.client.alarms.Alarms(
  connection.client, connection.e2e).handle_event(event)`); every `alarm`/`alarm_status` event
  is also posted as `MessengerEventArrived`.

Messages posted (see `tui.messages`): `ConnectionStateChanged`, `ConversationsChanged`,
`ChatMessageArrived` (a decrypted message with its structured content), `ChatLineChanged`
(reactions, receipts, edits, a queued message sent), `BrandingChanged`, `MessengerEventArrived`.

What the pane showed (the last HISTORY_LINES messages per conversation) is kept sealed to the
device keys beside the protocol state, so a restart shows the conversations as they were.
Nothing here logs a password, a key or message content.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import json
import logging
import mimetypes
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from messenger.client import (
    Cursors,
    MessengerClient,
    MessengerError,
    TransportError,
    Unauthenticated,
)
from messenger.client.content import (
    AttachmentRef,
    Content,
    ContentError,
    Edit,
    File,
    Location,
    Reaction,
    Text,
    Voice,
    encode,
    parse_content,
)
from messenger.client.e2e import (
    DecryptedMessage,
    DeviceTrust,
    E2EResult,
    E2ESession,
    MembershipChange,
    MessageDeleted,
    RejectedMessage,
    UndecodableMessage,
    UndecryptableMessage,
)
from messenger.crypto import (
    AttachmentKey,
    CryptoError,
    DeviceKeys,
    KeyStoreError,
    load_device_keys,
    open_state,
    save_device_keys,
    seal_state,
    write_private_file,
)
from tui.messages import (
    BrandingChanged,
    ChatLineChanged,
    ChatMessageArrived,
    ConnectionStateChanged,
    ConversationsChanged,
    MessengerEventArrived,
)

log = logging.getLogger(__name__)

#: Stream events other features consume (alarms and panic).
ALARM_EVENTS = ("alarm", "alarm_status")
#: Seconds between saves of the protocol state while messages arrive (and at the end).
SAVE_EVERY_S = 2.0
#: Messages kept per conversation in the local history (sealed, like the protocol state).
HISTORY_LINES = 500
#: Reconnect back-off, seconds.
FIRST_RETRY_S, LAST_RETRY_S = 0.2, 5.0

Post = Callable[[Any], object]
EventHook = Callable[["MessengerConnection", Mapping[str, Any]], Awaitable[object]]


class MessengerConfigError(ValueError):
    """The `[messenger.<profile>]` settings cannot be used; the message names the entry."""


class ConnectionState(enum.StrEnum):
    ONLINE = "online"
    CONNECTING = "connecting"
    OFFLINE = "offline"


@dataclass(frozen=True)
class MessengerAccount:
    """One profile's messenger account; `password` never appears in a repr or a log."""

    profile: str
    server: str
    user: str
    password: str = field(repr=False)
    state_dir: Path
    device_name: str = "medbridge terminal"

    @classmethod
    def from_mapping(
        cls,
        profile: str,
        values: Mapping[str, Any],
        *,
        state_dir: Path,
        environ: Mapping[str, str],
    ) -> MessengerAccount:
        """From `[messenger.<profile>]`: `server`, `user`, and the password from the variable
        `password_env` or the file `password_file` (never in the settings file itself)."""
        where = f"[messenger.{profile}]"
        known = {"server", "user", "password_env", "password_file", "device_name"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MessengerConfigError(f"Unknown setting in {where}: {', '.join(unknown)}.")
        for key in ("server", "user"):
            if not isinstance(values.get(key), str) or not values[key]:
                raise MessengerConfigError(f"{where} needs `{key}`.")
        password = ""
        if isinstance(values.get("password_env"), str):
            password = environ.get(values["password_env"], "")
            if not password:
                raise MessengerConfigError(
                    f"{where}: the variable {values['password_env']} is not set."
                )
        elif isinstance(values.get("password_file"), str):
            try:
                password = Path(values["password_file"]).expanduser().read_text().strip()
            except OSError as exc:
                raise MessengerConfigError(
                    f"{where}: cannot read password_file: {exc.strerror}."
                ) from None
        else:
            raise MessengerConfigError(f"{where} needs `password_env` or `password_file`.")
        return cls(
            profile=profile,
            server=str(values["server"]),
            user=str(values["user"]),
            password=password,
            state_dir=state_dir,
            device_name=str(values.get("device_name", "medbridge terminal")),
        )


def accounts_in(
    table: Mapping[str, Any], *, state_root: Path, environ: Mapping[str, str]
) -> dict[str, MessengerAccount]:
    """Every `[messenger.<profile>]` of the settings, keyed by profile name."""
    return {
        name: MessengerAccount.from_mapping(
            name, values, state_dir=state_root / _safe(name), environ=environ
        )
        for name, values in table.items()
        if isinstance(values, Mapping)
    }


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


@dataclass(frozen=True)
class Branding:
    """The tenant's colours (CSS colour strings) and name; None where the tenant sets none."""

    primary: str | None = None
    accent: str | None = None
    name: str = ""


@dataclass
class ChatLine:
    """One message of a conversation as the pane shows it."""

    seq: int  # 0 while queued (not yet stored by the server)
    sender_user_id: str
    mine: bool
    content: Content | None  # None: could not be read (see `problem`)
    verified: bool = True
    sent_at_ms: int | None = None
    reply_to: int | None = None
    edited: bool = False
    deleted: bool = False
    reactions: dict[str, set[str]] = field(default_factory=dict)  # emoji -> user ids
    receipts: dict[str, str] = field(default_factory=dict)  # user id -> delivered|read
    txn_id: str = ""
    queued: bool = False
    problem: str = ""  # why the content is missing: "could not be verified", ...
    thumbnail: bytes | None = None  # an image's decrypted JPEG thumbnail, once fetched

    @property
    def key(self) -> str:
        """Stable identity while the seq is not known yet."""
        return f"s{self.seq}" if self.seq else f"t{self.txn_id}"


@dataclass
class Conversation:
    conversation_id: str
    kind: str  # direct, group, managed
    name: str
    members: tuple[str, ...] = ()
    lines: list[ChatLine] = field(default_factory=list)
    unread: int = 0
    title: str = ""  # what the list shows: the name, or the other person of a direct chat

    def line(self, seq: int) -> ChatLine | None:
        return next((line for line in self.lines if line.seq == seq), None)


@dataclass
class Outgoing:
    """A send waiting for the server; kept (sealed) in the account's outbox file."""

    txn_id: str
    conversation_id: str
    kind: str  # text, file, voice, location, reaction
    text: str = ""
    path: str = ""
    lat: float = 0.0
    lon: float = 0.0
    accuracy_m: float = 0.0
    reply_to: int | None = None
    target: int = 0
    mime: str = ""

    def content(self) -> Content | None:
        """What the local line shows before the server has it."""
        if self.kind == "text":
            return Text(self.text)
        if self.kind == "location":
            return Location(self.lat, self.lon, self.accuracy_m)
        return None


class MessengerConnection:
    """One account's connection; see the module docstring for the interface."""

    def __init__(
        self,
        account: MessengerAccount,
        post: Post,
        *,
        client_factory: Callable[[str], MessengerClient] | None = None,
    ) -> None:
        self.account = account
        self.profile = account.profile
        self._post = post
        self._client_factory = client_factory or (lambda url: MessengerClient(url, retries=1))
        self.client: MessengerClient = self._client_factory(account.server)
        self.e2e: E2ESession | None = None
        self.keys: DeviceKeys | None = None
        self.state = ConnectionState.CONNECTING
        self.reason = ""
        self.user_id = ""
        self.branding = Branding()
        self.conversations: dict[str, Conversation] = {}
        self.outbox: list[Outgoing] = []
        self._names: dict[str, str] = {}
        self._hooks: list[EventHook] = []
        self._stream: Any = None
        self._last_save = 0.0
        self._dirty = False
        self._flush_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._saving: asyncio.Task[None] | None = None
        self.closed = False

    # ------------------------------------------------------------------ files

    @property
    def _keys_path(self) -> Path:
        return self.account.state_dir / "device.keys"

    @property
    def _state_path(self) -> Path:
        return self.account.state_dir / "e2e.state"

    @property
    def _cursors_path(self) -> Path:
        return self.account.state_dir / "cursors.json"

    @property
    def _history_path(self) -> Path:
        return self.account.state_dir / "history.sealed"

    @property
    def _outbox_path(self) -> Path:
        return self.account.state_dir / "outbox.sealed"

    # ------------------------------------------------------------------ hooks

    def add_event_hook(self, hook: EventHook) -> None:
        """Await `hook(self, event)` for every raw stream event, in stream order."""
        self._hooks.append(hook)

    # ------------------------------------------------------------------ lifecycle

    def _set_state(self, state: ConnectionState, reason: str = "") -> None:
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        self._post(ConnectionStateChanged(self.profile, state.value, reason))

    async def run(self) -> None:
        """Connect and stream until cancelled; retries (offline) while the server is away."""
        delay = FIRST_RETRY_S
        self._post(ConnectionStateChanged(self.profile, self.state.value, ""))
        session_ended = False
        await self._show_kept_history()
        try:
            while not self.closed:
                try:
                    if self.e2e is None:
                        await self._sign_in()
                    elif session_ended:  # expired or revoked: the same device signs in again
                        await self.client.login(
                            self.account.user, self.account.password, device_id=self.device_id
                        )
                    session_ended = False
                    await self._stream_once()
                    delay = FIRST_RETRY_S
                except Unauthenticated as exc:
                    if self.e2e is None or session_ended:
                        self._set_state(ConnectionState.OFFLINE, f"sign-in refused: {exc}")
                        return
                    session_ended = True
                    self._set_state(ConnectionState.CONNECTING, "session ended: signing in again")
                except KeyStoreError as exc:
                    self._set_state(ConnectionState.OFFLINE, f"device keys unusable: {exc}")
                    return
                except (TransportError, OSError) as exc:
                    log.info("messenger %s unreachable: %s", self.profile, type(exc).__name__)
                    self._set_state(ConnectionState.OFFLINE, "the messenger cannot be reached")
                except MessengerError as exc:  # refused or failing server: said, and tried again
                    log.info("messenger %s: %s", self.profile, type(exc).__name__)
                    self._set_state(ConnectionState.OFFLINE, str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY_S)
                self._set_state(ConnectionState.CONNECTING)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()
        self._save(force=True)
        with contextlib.suppress(Exception):
            await self.client.aclose()

    async def _show_kept_history(self) -> None:
        """With this device's keys on disk, the kept conversations (and queued sends) show at
        once, before the server answers: someone starting offline still reads and writes."""
        if self.keys is not None or not self._keys_path.exists():
            return
        try:
            keys = await asyncio.to_thread(load_device_keys, self._keys_path, self.account.password)
        except KeyStoreError:
            return  # said when signing in
        self.keys, self.user_id = keys, self.user_id or keys.user_id
        self._load_history()
        self._load_outbox()
        self.restore_queued_lines()
        self._post(ConversationsChanged(self.profile))

    async def _sign_in(self) -> None:
        acc = self.account
        data = await self.client.login(acc.user, acc.password)
        self.user_id = str(data["user_id"])
        keys = self._load_or_create_keys()
        registered = {d["device_id"] for d in await self.client.devices(self.user_id)}
        if keys.device_id in registered:
            await self.client.login(acc.user, acc.password, device_id=keys.device_id)
            e2e = self._restore(keys)
            self._load_cursors()
        else:
            e2e = E2ESession.for_client(self.client, keys)
            await e2e.register_device(acc.device_name)
            self.client.cursors = Cursors()
        shown = self.keys is keys  # the kept history and outbox were read before the server
        self.keys, self.e2e = keys, e2e
        if not shown:
            self._load_history()
            self._load_outbox()
        await self._load_branding()
        await self.refresh_conversations()
        self.restore_queued_lines()

    def _load_or_create_keys(self) -> DeviceKeys:
        if self.keys is not None and self.keys.user_id == self.user_id:
            return self.keys  # loaded to show the kept history
        if self._keys_path.exists():
            return load_device_keys(self._keys_path, self.account.password)
        keys = DeviceKeys.generate(self.user_id, uuid.uuid4().hex)
        save_device_keys(self._keys_path, keys, self.account.password)
        return keys

    def _restore(self, keys: DeviceKeys) -> E2ESession:
        fresh = E2ESession.for_client(self.client, keys)
        if self._state_path.exists():
            try:
                return E2ESession.load_state(fresh.transport, keys, self._state_path)
            except KeyStoreError as exc:
                log.warning(
                    "messenger state of %s unreadable, starting afresh: %s", self.profile, exc
                )
        return fresh

    def _load_cursors(self) -> None:
        try:
            doc = json.loads(self._cursors_path.read_text())
            self.client.cursors = Cursors(
                conversations={str(k): int(v) for k, v in doc["conversations"].items()},
                to_device=int(doc["to_device"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.client.cursors = Cursors()

    def _save(self, *, force: bool = False) -> None:
        """Protocol state, then the stream position (never past what the state holds).

        The state is taken here, in stream order; the sealed write runs in a thread unless
        `force` (at the end), so the pane is not kept waiting for the disk."""
        if self.e2e is None or self.keys is None or not (self._dirty or force):
            return
        now = time.monotonic()
        if not force and (now - self._last_save < SAVE_EVERY_S or self._saving is not None):
            return
        sealed = seal_state(self.keys, self.e2e.export_state())
        history = seal_state(self.keys, json.dumps(self._history_doc()).encode())
        safe = self.e2e.safe_cursors(self.client.cursors)
        cursors = json.dumps({"conversations": safe.conversations, "to_device": safe.to_device})
        self._last_save, self._dirty = now, False
        if force:
            self._write_state(sealed, history, cursors.encode())
            return

        async def write() -> None:
            try:
                await asyncio.to_thread(self._write_state, sealed, history, cursors.encode())
            finally:
                self._saving = None

        self._saving = asyncio.get_running_loop().create_task(write())

    def _write_state(self, sealed: bytes, history: bytes, cursors: bytes) -> None:
        try:
            write_private_file(self._state_path, sealed)
            write_private_file(self._history_path, history)
            write_private_file(self._cursors_path, cursors)
        except OSError as exc:
            log.warning("cannot save the messenger state of %s: %s", self.profile, exc.strerror)
            self._dirty = True

    def _history_doc(self) -> dict[str, Any]:
        """What the pane showed, to show it again after a restart (the server keeps only
        ciphertext this device can no longer open)."""
        return {
            "names": self._names,
            "conversations": [
                {
                    "id": c.conversation_id,
                    "kind": c.kind,
                    "name": c.name,
                    "title": c.title,
                    "members": list(c.members),
                    "unread": c.unread,
                    "lines": [d for ln in c.lines[-HISTORY_LINES:] if (d := _line_doc(ln))],
                }
                for c in self.conversations.values()
            ],
        }

    def _load_history(self) -> None:
        assert self.keys is not None
        if not self._history_path.exists():
            return
        try:
            doc = json.loads(open_state(self.keys, self._history_path.read_bytes()))
            self._names.update({str(k): str(v) for k, v in doc["names"].items()})
            for c in doc["conversations"]:
                conv = Conversation(
                    str(c["id"]),
                    str(c["kind"]),
                    str(c["name"]),
                    tuple(str(m) for m in c["members"]),
                    [_line_from_doc(d) for d in c["lines"]],
                    int(c["unread"]),
                    str(c["title"]),
                )
                self.conversations.setdefault(conv.conversation_id, conv)
        except (OSError, ValueError, KeyError, TypeError, CryptoError, ContentError) as exc:
            log.warning("message history of %s unreadable: %s", self.profile, type(exc).__name__)

    async def _load_branding(self) -> None:
        try:
            config = await self.client.tenant_config()
        except MessengerError:
            return
        brand = config.get("branding")
        if not isinstance(brand, Mapping):
            return
        branding = Branding(
            primary=_colour(brand.get("primary_colour")),
            accent=_colour(brand.get("accent_colour")),
            name=str(brand.get("name") or ""),
        )
        if branding != self.branding:
            self.branding = branding
            self._post(BrandingChanged(self.profile, branding))

    # ------------------------------------------------------------------ conversations

    async def refresh_conversations(self) -> None:
        """Read the conversation list (names, members) and post `ConversationsChanged`."""
        for row in await self.client.conversations():
            cid = str(row["conversation_id"])
            conv = self.conversations.get(cid)
            if conv is None:
                conv = Conversation(cid, str(row.get("kind", "group")), str(row.get("name") or ""))
                await self._complete(conv)
                conv = self.conversations.setdefault(cid, conv)
            else:
                conv.name = str(row.get("name") or "")
                await self._complete(conv)
        self._post(ConversationsChanged(self.profile))

    async def _complete(self, conv: Conversation) -> None:
        try:
            detail = await self.client.conversation(conv.conversation_id)
        except MessengerError:
            detail = {}
        conv.members = tuple(str(m["user_id"]) for m in detail.get("members", ()))
        others = [m for m in conv.members if m != self.user_id]
        if conv.name:
            conv.title = conv.name
        elif others:
            conv.title = ", ".join([await self.name_of(u) for u in others[:3]])
        else:
            conv.title = "(only you)"

    async def _conversation(self, cid: str) -> Conversation:
        conv = self.conversations.get(cid)
        if conv is None:
            # Complete before it is listed: screens never see a half-known conversation.
            conv = Conversation(cid, "group", "")
            try:
                row = await self.client.conversation(cid)
                conv.kind, conv.name = str(row.get("kind", "group")), str(row.get("name") or "")
            except MessengerError:
                pass
            await self._complete(conv)
            conv = self.conversations.setdefault(cid, conv)
            self._post(ConversationsChanged(self.profile))
        return conv

    async def name_of(self, user_id: str) -> str:
        """The user's display name (else address) from the directory; the id if unknown."""
        name = self._names.get(user_id)
        if name is None:
            try:
                entry = await self.client.user(user_id)
                name = str(entry.get("display_name") or entry.get("email") or user_id)
            except MessengerError:
                name = user_id
            self._names[user_id] = name
        return name

    def cached_name(self, user_id: str) -> str:
        return self._names.get(user_id, user_id)

    async def start_direct(self, email: str) -> str:
        """The direct conversation with the person at `email` (made if there is none)."""
        wanted = email.lower()  # addresses are typed in any case
        found = [
            e for e in await self.client.directory(email) if str(e.get("email")).lower() == wanted
        ]
        if not found:
            raise MessengerError(f"{email} is not in the messenger's directory")
        peer = str(found[0]["user_id"])
        for conv in self.conversations.values():
            if conv.kind == "direct" and set(conv.members) == {peer, self.user_id}:
                return conv.conversation_id
        row = await self.client.create_conversation("direct", [peer])
        conv = await self._conversation(str(row["conversation_id"]))
        return conv.conversation_id

    # ------------------------------------------------------------------ the stream

    async def _stream_once(self) -> None:
        """One connection of the stream: replay, `synced` (then online, flush), live events."""
        stream = self.client.events(reconnect=False)
        self._stream = stream
        if self.e2e is not None:
            self.e2e.send_through(stream)  # the user's sends, from other tasks than this one
        try:
            async for event in stream:
                await self._on_event(event)
        finally:
            self._stream = None
            if self.e2e is not None:
                self.e2e.send_through(None)
            with contextlib.suppress(Exception):
                await stream.aclose()
            self._save(force=True)

    async def _on_event(self, event: Mapping[str, Any]) -> None:
        assert self.e2e is not None
        kind = event.get("type")
        for hook in self._hooks:
            try:
                await hook(self, event)
            except Exception:  # a feature's failure must not stop the chat
                log.exception("messenger event hook failed")
        if kind in ALARM_EVENTS:
            self._post(MessengerEventArrived(self.profile, dict(event)))
            return
        if kind == "synced":
            self._set_state(ConnectionState.ONLINE)
            self._background(self.flush_outbox())
        if kind == "receipt":
            await self._on_receipt(event)
            return
        if kind == "message" and event.get("sender_device_id") == self.e2e.device_id:
            return  # our own send: shown since it left (its own sender key is not inbound)
        results = await self.e2e.handle_event(event)
        self._dirty = True
        for result in results:
            await self._on_result(result)
        self._save()

    async def _on_receipt(self, event: Mapping[str, Any]) -> None:
        conv = self.conversations.get(str(event.get("conversation_id")))
        if conv is None:
            return
        seq, user, kind = int(event["seq"]), str(event["user_id"]), str(event["kind"])
        for line in conv.lines:
            if line.mine and 0 < line.seq <= seq and line.receipts.get(user) != "read":
                line.receipts[user] = kind
                self._dirty = True
                self._post(ChatLineChanged(self.profile, conv.conversation_id, line.key))

    async def _on_result(self, result: E2EResult) -> None:
        if isinstance(result, DecryptedMessage):
            await self._on_message(result)
        elif isinstance(result, MessageDeleted):
            conv = await self._conversation(result.conversation_id)
            line = conv.line(result.target)
            if line is not None:
                line.deleted, line.content = True, None
                line.reactions.clear()
                self._post(ChatLineChanged(self.profile, conv.conversation_id, line.key))
        elif isinstance(result, MembershipChange):
            conv = await self._conversation(result.conversation_id)
            await self._complete(conv)
            self._post(ConversationsChanged(self.profile))
        elif isinstance(result, RejectedMessage | UndecodableMessage | UndecryptableMessage):
            if result.conversation_id is None:
                return
            problem = {
                RejectedMessage: "could not be verified",
                UndecodableMessage: "cannot be displayed by this version",
                UndecryptableMessage: "waiting for its key",
            }[type(result)]
            conv = await self._conversation(result.conversation_id)
            line = conv.line(result.seq)
            if line is None:
                line = ChatLine(result.seq, result.sender_user_id, False, None, False)
                self._insert(conv, line)
            line.problem = problem
            await self.name_of(result.sender_user_id)
            self._post(ChatMessageArrived(self.profile, conv.conversation_id, line))

    async def _on_message(self, msg: DecryptedMessage) -> None:
        conv = await self._conversation(msg.conversation_id)
        await self.name_of(msg.sender_user_id)
        content = msg.content
        mine = msg.sender_user_id == self.user_id
        if isinstance(content, Edit | Reaction):
            target = conv.line(content.target)
            if target is None or target.deleted:
                return
            if isinstance(content, Edit):
                if target.sender_user_id != msg.sender_user_id or not isinstance(
                    target.content, Text
                ):
                    return  # only the sender edits, and only texts
                target.content, target.edited = Text(content.body, target.content.actions), True
            else:
                users = target.reactions.setdefault(content.emoji, set())
                (users.discard if content.remove else users.add)(msg.sender_user_id)
                if not users:
                    del target.reactions[content.emoji]
            self._post(ChatLineChanged(self.profile, conv.conversation_id, target.key))
            return
        if isinstance(content, Location) and content.live is not None:
            shared = _live_line(conv, content.live.id)
            if shared is not None and shared.seq != msg.seq:
                # A live position moves the first one; only its sender may move it.
                if shared.sender_user_id == msg.sender_user_id:
                    shared.content, shared.sent_at_ms = content, msg.sent_at_ms
                    self._post(ChatLineChanged(self.profile, conv.conversation_id, shared.key))
                return
        line = conv.line(msg.seq)
        if line is None:
            line = ChatLine(msg.seq, msg.sender_user_id, mine, content)
            self._insert(conv, line)
        line.content, line.problem = content, ""
        line.verified = msg.sender_verified
        line.sent_at_ms, line.reply_to = msg.sent_at_ms, msg.reply_to
        self._post(ChatMessageArrived(self.profile, conv.conversation_id, line))
        if isinstance(content, File) and content.thumbnail is not None:
            self._background(self._fetch_thumbnail(conv.conversation_id, line))
        if not mine:
            conv.unread += 1
            self._background(self._receipt(conv.conversation_id, msg.seq, "delivered"))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run beside the stream (receipts, flushing): the next event does not wait for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch_thumbnail(self, conversation_id: str, line: ChatLine) -> None:
        """Fetch and decrypt an image's thumbnail beside the stream; the line redraws with it.
        A thumbnail that does not come (offline, tampered) leaves the image's text row."""
        content = line.content
        if not isinstance(content, File) or content.thumbnail is None:
            return
        try:
            line.thumbnail = await self.fetch(content.thumbnail.ref)
        except (MessengerError, CryptoError) as exc:
            log.info("thumbnail not shown in %s: %s", self.profile, type(exc).__name__)
            return
        self._post(ChatLineChanged(self.profile, conversation_id, line.key))

    async def _receipt(self, conversation_id: str, seq: int, kind: str) -> None:
        with contextlib.suppress(MessengerError):
            await self.client.receipt(conversation_id, seq, kind)

    @staticmethod
    def _insert(conv: Conversation, line: ChatLine) -> None:
        """In seq order; queued lines (seq 0) stay at the end."""
        index = len(conv.lines)
        while index > 0 and (
            conv.lines[index - 1].seq == 0 or conv.lines[index - 1].seq > line.seq
        ):
            index -= 1
        conv.lines.insert(index, line)

    def mark_read(self, conversation_id: str) -> None:
        """The user looked at the conversation: unread to 0 at once, and a read receipt for
        its last message sent beside the stream."""
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.unread == 0:
            return
        conv.unread = 0
        last = max((ln.seq for ln in conv.lines if not ln.mine and ln.seq), default=0)
        self._post(ConversationsChanged(self.profile))
        if last and self.state is ConnectionState.ONLINE:
            self._background(self._receipt(conversation_id, last, "read"))

    # ------------------------------------------------------------------ sending

    async def send_text(self, cid: str, text: str, *, reply_to: int | None = None) -> ChatLine:
        return await self._queue(Outgoing(_txn(), cid, "text", text=text, reply_to=reply_to))

    async def send_file(self, cid: str, path: Path, *, caption: str = "") -> ChatLine:
        self._readable(path)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return await self._queue(
            Outgoing(_txn(), cid, "file", text=caption, path=str(path), mime=mime)
        )

    async def send_voice(self, cid: str, path: Path) -> ChatLine:
        self._readable(path)
        mime = "audio/wav" if path.suffix.lower() == ".wav" else "audio/ogg"
        return await self._queue(Outgoing(_txn(), cid, "voice", path=str(path), mime=mime))

    async def send_location(
        self, cid: str, lat: float, lon: float, accuracy_m: float = 10.0
    ) -> ChatLine:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise MessengerError("a position needs -90 ≤ latitude ≤ 90 and -180 ≤ longitude ≤ 180")
        return await self._queue(
            Outgoing(_txn(), cid, "location", lat=lat, lon=lon, accuracy_m=accuracy_m)
        )

    async def react(self, cid: str, seq: int, emoji: str) -> None:
        """React to message `seq`; shown at once (our own copy does not come back to us)."""
        conv = self.conversations.get(cid)
        target = conv.line(seq) if conv is not None else None
        if conv is not None and target is not None:
            target.reactions.setdefault(emoji, set()).add(self.user_id)
            self._dirty = True
            self._post(ChatLineChanged(self.profile, cid, target.key))
        await self._queue(Outgoing(_txn(), cid, "reaction", text=emoji, target=seq), show=False)

    @staticmethod
    def _readable(path: Path) -> None:
        if not path.is_file():
            raise MessengerError(f"{path} is not a readable file")

    async def _queue(self, out: Outgoing, *, show: bool = True) -> ChatLine:
        """Keep the send (sealed on disk) and show it at once; sent now if online."""
        conv = self.conversations.get(out.conversation_id)
        line = ChatLine(0, self.user_id, True, out.content(), txn_id=out.txn_id, queued=True)
        line.reply_to = out.reply_to
        line.sent_at_ms = int(time.time() * 1000)
        if out.kind in ("file", "voice"):
            line.content = _local_file(out)
        self.outbox.append(out)
        self._persist_outbox()
        if conv is not None and show:
            conv.lines.append(line)
            self._post(ChatMessageArrived(self.profile, conv.conversation_id, line))
        if self.state is ConnectionState.ONLINE:
            await self.flush_outbox()
        return line

    async def flush_outbox(self) -> None:
        """Send what is queued, oldest first; stops at the first transport failure (kept)."""
        async with self._flush_lock:
            while self.outbox and self.e2e is not None:
                out = self.outbox[0]
                try:
                    seq = await self._send(out)
                except (TransportError, OSError):
                    return  # still offline: the reconnect flushes again
                except MessengerError as exc:
                    log.warning("a queued message was refused: %s", type(exc).__name__)
                    self._sent(out, 0, problem=f"not sent: {exc}")
                else:
                    self._sent(out, seq)
                self.outbox.pop(0)
                self._persist_outbox()

    def _sent(self, out: Outgoing, seq: int, *, problem: str = "") -> None:
        conv = self.conversations.get(out.conversation_id)
        if conv is None:
            return
        line = next((ln for ln in conv.lines if ln.txn_id == out.txn_id and ln.queued), None)
        if line is None:
            return
        key = line.key
        line.queued, line.problem = False, problem
        self._dirty = True
        if seq:
            line.seq = seq
            conv.lines.remove(line)
            self._insert(conv, line)
        self._post(ChatLineChanged(self.profile, conv.conversation_id, key, line.key))

    async def _send(self, out: Outgoing) -> int:
        e2e = self.e2e
        assert e2e is not None
        cid, txn = out.conversation_id, out.txn_id
        if out.kind == "text":
            return await e2e.send_text(cid, out.text, reply_to=out.reply_to, txn_id=txn)
        if out.kind == "location":
            return await e2e.send_location(cid, out.lat, out.lon, out.accuracy_m, txn_id=txn)
        if out.kind == "reaction":
            return await e2e.react(cid, out.target, out.text)
        path = Path(out.path)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise MessengerError(f"{path.name}: {exc.strerror}") from None
        if out.kind == "voice":
            return await e2e.send_voice(cid, data, mime=out.mime, name=path.name, txn_id=txn)
        return await e2e.send_attachment(
            cid, data, name=path.name, mime=out.mime, body=out.text, txn_id=txn
        )

    def _persist_outbox(self) -> None:
        if self.keys is None:
            return  # not signed in yet: kept in memory until the keys are loaded
        doc = json.dumps([vars(o) for o in self.outbox]).encode()
        try:
            write_private_file(self._outbox_path, seal_state(self.keys, doc))
        except OSError as exc:
            log.warning("cannot keep the outbox of %s: %s", self.profile, exc.strerror)

    def _load_outbox(self) -> None:
        assert self.keys is not None
        kept: list[Outgoing] = []
        if self._outbox_path.exists():
            try:
                doc = json.loads(open_state(self.keys, self._outbox_path.read_bytes()))
                kept = [Outgoing(**row) for row in doc]
            except (OSError, ValueError, TypeError, CryptoError) as exc:
                log.warning("outbox of %s unreadable: %s", self.profile, type(exc).__name__)
        known = {o.txn_id for o in self.outbox}
        self.outbox = [o for o in kept if o.txn_id not in known] + self.outbox
        self._persist_outbox()

    def restore_queued_lines(self) -> None:
        """Show sends kept from an earlier run in their conversations (after the list loads)."""
        for out in self.outbox:
            conv = self.conversations.get(out.conversation_id)
            if conv is None or out.kind == "reaction":
                continue
            if any(ln.txn_id == out.txn_id for ln in conv.lines):
                continue
            content = _local_file(out) if out.kind in ("file", "voice") else out.content()
            line = ChatLine(0, self.user_id, True, content, txn_id=out.txn_id, queued=True)
            line.reply_to = out.reply_to
            conv.lines.append(line)

    # ------------------------------------------------------------------ attachments and trust

    async def fetch(self, ref: AttachmentRef) -> bytes:
        """An attachment's decrypted bytes (checked against its key)."""
        assert self.e2e is not None
        return await self.e2e.fetch_attachment(ref)

    async def safety_number(self, user_id: str) -> str:
        assert self.e2e is not None
        return await self.e2e.safety_number(user_id)

    async def my_devices(self) -> list[DeviceTrust]:
        assert self.e2e is not None
        return await self.e2e.device_trust(self.user_id)

    @property
    def holds_master_key(self) -> bool:
        return self.e2e is not None and self.e2e.holds_master_key

    @property
    def device_id(self) -> str:
        return self.e2e.device_id if self.e2e is not None else ""

    async def approve_device(self, device_id: str) -> None:
        assert self.e2e is not None
        await self.e2e.approve_device(device_id)

    async def close(self) -> None:
        """End the stream and keep the state (also what cancelling `run` does)."""
        self.closed = True
        await self._shutdown()


def _line_doc(line: ChatLine) -> dict[str, Any] | None:
    """A shown message as JSON for the sealed history (queued ones live in the outbox)."""
    if line.queued:
        return None
    doc: dict[str, Any] = {
        "seq": line.seq,
        "sender": line.sender_user_id,
        "mine": line.mine,
        "verified": line.verified,
        "sent_at_ms": line.sent_at_ms,
        "reply_to": line.reply_to,
        "edited": line.edited,
        "deleted": line.deleted,
        "reactions": {emoji: sorted(users) for emoji, users in line.reactions.items()},
        "receipts": line.receipts,
        "problem": line.problem,
    }
    if line.thumbnail is not None:  # the history is sealed: kept for the next start, offline too
        doc["thumbnail"] = base64.b64encode(line.thumbnail).decode()
    content = line.content
    if isinstance(content, File | Voice) and not content.attachment.attachment_id:
        ref = content.attachment  # sent from here: the file is on this computer
        kind = "voice" if isinstance(content, Voice) else "file"
        doc["local"] = {"kind": kind, "name": ref.name, "mime": ref.mime, "size": ref.key.size}
    elif content is not None:
        try:
            doc["content"] = encode(content)
        except ContentError:
            doc["problem"] = doc["problem"] or "not kept"
    return doc


def _line_from_doc(doc: Mapping[str, Any]) -> ChatLine:
    content: Content | None = None
    if doc.get("content") is not None:
        content = parse_content(doc["content"]).content
    elif doc.get("local") is not None:
        local = doc["local"]
        ref = AttachmentRef(
            "", str(local["name"]), str(local["mime"]), AttachmentKey(b"", b"", int(local["size"]))
        )
        content = Voice(ref, 0) if local["kind"] == "voice" else File(ref)
    return ChatLine(
        seq=int(doc["seq"]),
        sender_user_id=str(doc["sender"]),
        mine=bool(doc["mine"]),
        content=content,
        verified=bool(doc["verified"]),
        sent_at_ms=doc.get("sent_at_ms"),
        reply_to=doc.get("reply_to"),
        edited=bool(doc["edited"]),
        deleted=bool(doc["deleted"]),
        reactions={str(e): set(users) for e, users in doc["reactions"].items()},
        receipts={str(u): str(k) for u, k in doc["receipts"].items()},
        problem=str(doc["problem"]),
        thumbnail=base64.b64decode(doc["thumbnail"]) if doc.get("thumbnail") else None,
    )


def _live_line(conv: Conversation, share_id: str) -> ChatLine | None:
    """The line that started the live position sharing `share_id`, if shown."""
    for line in conv.lines:
        content = line.content
        if isinstance(content, Location) and content.live and content.live.id == share_id:
            return line
    return None


def _txn() -> str:
    return "tui-" + uuid.uuid4().hex


def _local_file(out: Outgoing) -> Content:
    """A queued file or voice message as a line shows it before upload (no key yet)."""
    try:
        size = Path(out.path).stat().st_size
    except OSError:
        size = 0
    ref = AttachmentRef("", Path(out.path).name, out.mime, AttachmentKey(b"", b"", size))
    if out.kind == "voice":
        return Voice(ref, 0, "")
    return File(ref, out.text)


def _colour(value: Any) -> str | None:
    """A tenant colour if it is a plain #rrggbb (nothing else reaches the CSS)."""
    if isinstance(value, str) and len(value) == 7 and value.startswith("#"):
        try:
            int(value[1:], 16)
        except ValueError:
            return None
        return value
    return None


class MessengerHub:
    """The connections of all profiles (profile name → connection); `MedApp.messenger`."""

    def __init__(self, post: Post) -> None:
        self._post = post
        self.connections: dict[str, MessengerConnection] = {}
        #: The profile whose messenger the screens show (the first added, until changed).
        self.active: str | None = None

    def add(self, account: MessengerAccount, **kwargs: Any) -> MessengerConnection:
        conn = MessengerConnection(account, self._post, **kwargs)
        self.connections[account.profile] = conn
        if self.active is None:
            self.active = account.profile
        return conn

    def get(self, profile: str | None = None) -> MessengerConnection | None:
        name = profile or self.active
        return self.connections.get(name) if name else None

    @property
    def current(self) -> MessengerConnection | None:
        return self.get()

    async def close(self) -> None:
        for conn in self.connections.values():
            await conn.close()
