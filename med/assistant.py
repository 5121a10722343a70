"""The assistant's part of `DelegateSession`: automatic replies and inbox rules of a mailbox,
mail tips before sending, and one search over several mailboxes.

Mixed into `DelegateSession`; the types are in `med.mailbox_settings`, which also says which
rights Exchange asks for each.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from med.backends.settings import SettingsBackend
from med.errors import AccessDenied, InvalidInput, MedError, NotFound, Unsupported
from med.mailbox_settings import (
    AutoReplies,
    AutoReplyState,
    InboxRule,
    MailboxHits,
    MailTip,
    SearchResults,
)
from med.model import Folder, ItemQuery

if TYPE_CHECKING:
    from med.backends.base import Backend

T = TypeVar("T")

__all__ = ["AssistantMixin"]


def _address(mailbox: str) -> str:
    box = mailbox.strip().lower()
    if "@" not in box:
        raise InvalidInput(f"{mailbox!r} is not an e-mail address.", mailbox=mailbox)
    return box


class AssistantMixin:
    """Methods of `DelegateSession` (see there for the session itself)."""

    _backend: Backend

    if TYPE_CHECKING:  # DelegateSession's own

        async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

        @property
        def user(self) -> str: ...

    def _settings(self) -> SettingsBackend:
        backend = self._backend
        if not isinstance(backend, SettingsBackend):
            raise Unsupported("mailbox_settings", backend.name)
        return backend

    # ------------------------------------------------------------------ automatic replies

    async def auto_replies(self, mailbox: str) -> AutoReplies:
        """The mailbox's automatic replies (out of office).

        Raises:
            AccessDenied: the user is neither the owner nor holds FullAccess on the mailbox.
        """
        return await self._run(self._settings().auto_replies, _address(mailbox))

    async def set_auto_replies(self, mailbox: str, replies: AutoReplies) -> AutoReplies:
        """Set the mailbox's automatic replies; returns them as the server keeps them.

        Raises:
            AccessDenied: as `auto_replies`.
            InvalidInput: scheduled without a start and end, or ending before it starts.
        """
        box = _address(mailbox)
        on = replies.state is not AutoReplyState.DISABLED
        if on and not (replies.internal_reply.strip() and replies.external_reply.strip()):
            raise InvalidInput(
                "Automatic replies that are on need a text for inside and one for outside "
                "the organisation (they may be the same).",
                mailbox=box,
            )
        if replies.state is AutoReplyState.SCHEDULED:
            if replies.start is None or replies.end is None:
                raise InvalidInput(
                    "Scheduled automatic replies need a start and an end.", mailbox=box
                )
            if replies.end <= replies.start:
                raise InvalidInput("The automatic replies must end after they start.", mailbox=box)
        await self._run(self._settings().set_auto_replies, box, replies)
        return await self.auto_replies(box)

    # ------------------------------------------------------------------ inbox rules

    async def inbox_rules(self, mailbox: str) -> list[InboxRule]:
        """The mailbox's inbox rules in the order the server applies them.

        Raises:
            AccessDenied: the user is neither the owner nor holds FullAccess on the mailbox.
        """
        return list(await self._run(self._settings().inbox_rules, _address(mailbox)))

    async def create_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        """Add an inbox rule (see `InboxRule.move_by_sender`, `.flag_by_keyword`,
        `.forward_to_assistant` for the common ones); returns it with its id.

        Raises:
            AccessDenied: as `inbox_rules`.
            InvalidInput: no name, no action, or something the server refuses.
        """
        box = _address(mailbox)
        if not rule.name.strip():
            raise InvalidInput("A rule needs a name.", mailbox=box)
        if not (
            rule.move_to
            or rule.mark_read
            or rule.importance
            or rule.categories
            or rule.forward_to
            or rule.delete
            or rule.stop
        ):
            raise InvalidInput("A rule needs at least one action.", mailbox=box)
        return await self._run(self._settings().create_rule, box, rule)

    async def _rule(self, mailbox: str, rule_id: str) -> InboxRule:
        for rule in await self.inbox_rules(mailbox):
            if rule.id == rule_id:
                return rule
        raise NotFound(f"{mailbox} has no inbox rule {rule_id!r}.", mailbox=mailbox)

    async def enable_rule(self, mailbox: str, rule_id: str, enabled: bool = True) -> InboxRule:
        """Switch a rule on or off.

        Raises:
            AccessDenied: as `inbox_rules`.
            NotFound: no such rule.
        """
        box = _address(mailbox)
        rule = await self._rule(box, rule_id)
        changed = dataclasses.replace(rule, enabled=enabled)
        return await self._run(self._settings().update_rule, box, changed)

    async def delete_rule(self, mailbox: str, rule_id: str) -> None:
        """Remove a rule.

        Raises:
            AccessDenied: as `inbox_rules`.
            NotFound: no such rule.
        """
        box = _address(mailbox)
        await self._rule(box, rule_id)
        await self._run(self._settings().delete_rule, box, rule_id)

    # ------------------------------------------------------------------ mail tips

    async def mail_tips(
        self, recipients: Sequence[str], *, sending_as: str | None = None
    ) -> list[MailTip]:
        """What the server says about each recipient of a message about to go out as
        `sending_as` (default: oneself): automatic replies, outside addresses, group sizes,
        moderation. `MailTip.warnings()` words them for the sender.

        Raises:
            AccessDenied: the user may not send for `sending_as`.
        """
        sender = _address(sending_as or self.user)
        wanted = list(dict.fromkeys(_address(r) for r in recipients))
        return list(await self._run(self._settings().mail_tips, sender, wanted))

    # ------------------------------------------------------------------ search

    async def search_mailboxes(
        self, text: str, targets: Sequence[str | Folder], *, limit: int = 25
    ) -> SearchResults:
        """Search several mailboxes at once: an address searches that mailbox's inbox, a
        `Folder` (a public folder, a functional mailbox's subfolder …) that folder. Results
        come grouped per target in the order given; a target that fails (no access, gone,
        unsupported) carries its error and the others still count.

        Raises:
            InvalidInput: empty search text or no targets.
            AccessDenied: every target was refused (nothing could be searched at all).
        """
        if not text.strip():
            raise InvalidInput("Give something to search for.")
        if not targets:
            raise InvalidInput("Name at least one mailbox or folder to search.")
        query = ItemQuery(limit=limit, search=text.strip())
        groups = await asyncio.gather(*(self._search_one(t, query) for t in targets))
        if all(g.error_kind == "AccessDenied" for g in groups):
            names = ", ".join(g.mailbox for g in groups)
            raise AccessDenied(f"You may not search {names}: {groups[0].error}")
        return SearchResults(text.strip(), tuple(groups))

    async def _search_one(self, target: str | Folder, query: ItemQuery) -> MailboxHits:
        session: Any = self  # DelegateSession's own default_folder and items
        label = target.mailbox if isinstance(target, Folder) else target.strip().lower()
        folder = target if isinstance(target, Folder) else None
        try:
            if folder is None:
                folder = await session.default_folder(_address(label), "inbox")
            page = await session.items(folder, query)
        except MedError as exc:
            return MailboxHits(label, folder, error=str(exc), error_kind=type(exc).__name__)
        return MailboxHits(label, folder, tuple(page.items), more=page.more)
