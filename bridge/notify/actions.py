"""Actions from the chat: parse a reply command, authorise it, carry it out once, answer.

A command refers to a notification by its number (`accept #12`) or, without one, to the newest
notification in that conversation. It is authorised against the *chat user's own* rights on the
mailbox, computed from the folder's permission list and the owner's delegates as the mail server
reports them (read with the watch's `rights_identity`); the bridge's own identity then carries it
out, on behalf of the mailbox owner. A user the owner never granted access is refused and nothing
happens. Each chat message is claimed once in the database before anything is done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from bridge.commands._med import find_folder
from bridge.notify.chat import ChatLink
from bridge.notify.config import BridgeConfig, Watch
from bridge.notify.health import HealthBoard
from bridge.notify.store import BridgeStore, LinkRow, NewNotification
from med import (
    AccessDenied,
    Delegate,
    DelegateSession,
    EditScope,
    FlagStatus,
    Folder,
    MedError,
    Message,
    ResponseType,
    Rights,
    SendOptions,
    Task,
    TaskStatus,
)
from med.permissions import effective_rights
from messenger.client.e2e import DecryptedMessage

__all__ = ["ActionHandler", "Command", "CommandError", "parse_command"]

log = logging.getLogger("bridge.notify.actions")

VERBS = (
    "accept",
    "tentative",
    "decline",
    "read",
    "unread",
    "flag",
    "unflag",
    "done",
    "move",
    "forward",
)
#: Verbs whose repetition changes nothing, so a run cut short by a crash may simply be redone.
IDEMPOTENT = {"read", "unread", "flag", "unflag", "done"}
_REF = re.compile(r"^#(\d+)$")

HELP = (
    "Commands: accept|tentative|decline [#N] [message] · read|unread [#N] · flag|unflag [#N] · "
    "done [#N] (a task) · move [#N] FOLDER · forward [#N] ADDRESS [text]. "
    "Without #N the newest notification here."
)


class CommandError(ValueError):
    """A command that cannot be understood; the message says how to write it."""


@dataclass(frozen=True)
class Command:
    verb: str
    ref: int | None
    argument: str = ""


def parse_command(text: str) -> Command | None:
    """The command in a chat message, None for ordinary chat.

    Raises:
        CommandError: it starts with a command word but is malformed.
    """
    verb, _, rest = text.strip().partition(" ")
    verb = verb.lower()
    if verb == "help":
        return Command("help", None)
    if verb not in VERBS:
        return None
    ref = None
    first, _, after = rest.strip().partition(" ")
    if m := _REF.match(first):
        ref, rest = int(m[1]), after
    argument = rest.strip()
    if verb in ("move", "forward") and not argument:
        raise CommandError(f"{verb} needs a {'folder' if verb == 'move' else 'recipient'}: {HELP}")
    if verb == "forward" and "@" not in argument.split()[0]:
        raise CommandError("forward needs an e-mail address, e.g. forward #12 name@example.org")
    return Command(verb, ref, argument)


class Authority:
    """The rights of chat users on mailbox folders, as the mail server's permission lists and
    delegate grants say (read with a session allowed to see them)."""

    def __init__(self, session: DelegateSession) -> None:
        self.session = session

    async def rights(self, user: str, folder: Folder) -> Rights:
        """Raises MedError (AccessDenied, Unsupported …) when the lists cannot be read."""
        seen = await self.session.folder(folder.id)
        permissions = await self.session.permissions(seen)
        delegates: list[Delegate] = []
        if seen.distinguished and seen.mailbox != "public":
            delegates, _ = await self.session.delegates(seen.mailbox)
        return effective_rights(user, seen, permissions, delegates)


SessionFor = Callable[[str], Awaitable[DelegateSession]]


class ActionHandler:
    """Handles chat messages addressed to the bridge."""

    def __init__(
        self,
        config: BridgeConfig,
        store: BridgeStore,
        chat: ChatLink,
        board: HealthBoard,
        session_for: SessionFor,
        on_recorded: Callable[[], None],
    ) -> None:
        self.config = config
        self.store = store
        self.chat = chat
        self.board = board
        self.session_for = session_for
        self.on_recorded = on_recorded
        self.watches: Mapping[str, Watch] = {w.mailbox: w for w in config.watches}

    async def handle(self, message: DecryptedMessage) -> None:
        try:
            command = parse_command(message.body)
        except CommandError as exc:
            await self._once(message, "refused", str(exc), None, "")
            return
        if command is None:
            return
        if command.verb == "help":
            await self._once(message, "done", HELP, None, "help")
            return
        link = (
            await self.store.link(command.ref)
            if command.ref is not None
            else await self.store.latest_link(message.conversation_id)
        )
        if link is None or link.conversation_id != message.conversation_id or not link.item_id:
            what = f"#{command.ref}" if command.ref is not None else "a notification"
            await self._once(
                message, "refused", f"There is no {what} in this conversation.", None, ""
            )
            return
        sender = await self.chat.email_of(message.sender_user_id)
        claimed = await self.store.claim_action(
            message.conversation_id,
            message.seq,
            sender,
            message.body[:500],
            link.outbox_id,
            self.config.worker_id,
        )
        if not claimed:
            return  # handled before (a repeat after a restart, or another worker took it)
        state, answer = await self._carry_out(command, link, sender)
        await self._finish(message.conversation_id, message.seq, state, answer)

    async def resume(self, *, own: bool) -> None:
        """Actions claimed but never finished by a worker no longer alive, and with `own` (at
        start, before any new claim) by this worker in its previous life: redo the idempotent
        ones, and say plainly for the others that their outcome is unknown — never do them
        twice."""
        me = self.config.worker_id
        live = set(await self.store.live_workers(self.config.lease_seconds)) | {me}
        for row in await self.store.unfinished_actions():
            if row.worker == me:
                if not own:
                    continue  # being carried out right now by this process
            elif row.worker in live or not await self.store.adopt_action(row.id, row.worker, me):
                continue
            try:
                command = parse_command(row.command)
            except CommandError:
                command = None
            link = await self.store.link(row.outbox_id) if row.outbox_id is not None else None
            if command is not None and command.verb in IDEMPOTENT and link is not None:
                state, answer = await self._carry_out(command, link, row.sender)
            else:
                state, answer = (
                    "unknown",
                    f"The bridge restarted while doing “{row.command}”; it may or may not have "
                    "happened. Please check the mailbox before trying again.",
                )
            await self._finish(row.conversation_id, row.seq, state, answer)

    async def _once(
        self, message: DecryptedMessage, state: str, answer: str, outbox_id: int | None, cmd: str
    ) -> None:
        """Answer a message that needs no mailbox work, once."""
        sender = await self.chat.email_of(message.sender_user_id)
        if await self.store.claim_action(
            message.conversation_id,
            message.seq,
            sender,
            cmd or message.body[:100],
            outbox_id,
            self.config.worker_id,
        ):
            await self._finish(message.conversation_id, message.seq, state, answer)

    async def _finish(self, conversation_id: str, seq: int, state: str, answer: str) -> None:
        reply = NewNotification(
            dedup_key=f"action:{conversation_id}:{seq}",
            mailbox="",
            route=f"conv:{conversation_id}",
            rule="action",
            # The answer names the command's seq inside the encrypted content (`reply_to`), so
            # a client pairs it with its command however answers interleave.
            payload={"text": answer, "reply_to": seq},
            not_before=self.store.now(),
        )
        await self.store.finish_action(conversation_id, seq, state, answer, reply)
        self.board.count("actions_done" if state == "done" else "actions_refused")
        self.on_recorded()

    # ------------------------------------------------------------------ doing it

    async def _carry_out(self, command: Command, link: LinkRow, sender: str) -> tuple[str, str]:
        watch = self.watches.get(link.mailbox)
        if watch is None:
            return "refused", f"{link.mailbox} is no longer watched by the bridge."
        user = self.config.mailbox_user(sender)
        try:
            session = await self.session_for(watch.identity)
            authority = Authority(await self.session_for(watch.rights_identity))
            item = await session.get(str(link.item_id))
            folder = await session.folder(str(item.folder_id))
            refusal = await self._authorise(command, authority, user, folder, session)
            if refusal is not None:
                log.info("action %s by %s on %s refused", command.verb, user, link.mailbox)
                return "refused", refusal
            done = await self._execute(command, session, item, link.mailbox)
        except AccessDenied as exc:
            return "refused", f"Refused: {exc}"
        except MedError as exc:
            return "failed", f"Could not {command.verb}: {exc}"
        return "done", done

    async def _authorise(
        self,
        command: Command,
        authority: Authority,
        user: str,
        folder: Folder,
        session: DelegateSession,
    ) -> str | None:
        """None when `user` may do it, else the sentence saying why not."""
        mailbox = folder.mailbox
        try:
            rights = await authority.rights(user, folder)
            if command.verb in ("accept", "tentative", "decline"):
                calendar = await session.default_folder(mailbox, "calendar")
                allowed = (
                    rights.can_read_items
                    and (await authority.rights(user, calendar)).edit is not EditScope.NONE
                )
                need = "edit the calendar"
            elif command.verb == "move":
                allowed = rights.delete is not EditScope.NONE
                need = "remove items from this folder"
            elif command.verb == "forward":
                allowed = rights.can_read_items and rights.edit is not EditScope.NONE
                need = "read and act on items in this folder"
            else:
                allowed = rights.edit is not EditScope.NONE
                need = "change items in this folder"
        except MedError as exc:
            return (
                f"Refused: the bridge cannot tell what {user} may do in {mailbox} "
                f"({type(exc).__name__}); nothing was done."
            )
        if not allowed:
            return (
                f"Refused: {user} has no right to {need} in {mailbox} "
                f"({folder.name}); nothing was done."
            )
        return None

    async def _execute(
        self, command: Command, session: DelegateSession, item: object, mailbox: str
    ) -> str:
        from med import Item

        assert isinstance(item, Item)
        verb = command.verb
        if verb in ("accept", "tentative", "decline"):
            response = {
                "accept": ResponseType.ACCEPT,
                "tentative": ResponseType.TENTATIVE,
                "decline": ResponseType.DECLINE,
            }[verb]
            await session.respond(item, response, command.argument or None)
            return f"Done: {verb} “{item.subject}” on behalf of {mailbox}."
        if verb in ("read", "unread"):
            if not isinstance(item, Message):
                return f"“{item.subject}” is no message; nothing to mark."
            await session.mark_read(item, verb == "read")
            return f"Done: “{item.subject}” marked {verb}."
        if verb in ("flag", "unflag"):
            status = FlagStatus.FLAGGED if verb == "flag" else FlagStatus.NOT_FLAGGED
            await session.set_flag(item, status)
            return f"Done: “{item.subject}” {'flagged' if verb == 'flag' else 'unflagged'}."
        if verb == "done":
            if not isinstance(item, Task):
                return f"“{item.subject}” is no task; nothing to complete."
            done = replace(item, status=TaskStatus.COMPLETED, percent_complete=100)
            await session.update(done, ["status", "percent_complete"])
            return f"Done: task “{item.subject}” completed."
        if verb == "move":
            target = await find_folder(session, mailbox, command.argument)
            await session.move(item, target)
            return f"Done: “{item.subject}” moved to {target.name}."
        address, _, text = command.argument.partition(" ")
        await session.forward(item, [address], text, options=SendOptions(from_mailbox=mailbox))
        return f"Done: “{item.subject}” forwarded to {address} on behalf of {mailbox}."
