"""The seam for mailbox settings: automatic replies, inbox rules and mail tips.

A separate protocol beside `Backend` so that a backend (or a test's fake) without these simply
does not implement it; `DelegateSession` then raises `Unsupported`. The same rules as for
`Backend` hold: blocking, `med` types in and out, only `MedError`s raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from med.mailbox_settings import AutoReplies, InboxRule, MailTip

__all__ = ["SettingsBackend"]


@runtime_checkable
class SettingsBackend(Protocol):
    def auto_replies(self, mailbox: str) -> AutoReplies:
        """The mailbox's automatic replies.

        Raises:
            AccessDenied: the user is neither owner nor holder of FullAccess.
            NotFound: no such mailbox.
        """
        ...

    def set_auto_replies(self, mailbox: str, replies: AutoReplies) -> None:
        """Replace the mailbox's automatic replies.

        Raises:
            AccessDenied: as `auto_replies`.
            InvalidInput: a scheduled window that ends before it starts.
        """
        ...

    def inbox_rules(self, mailbox: str) -> Sequence[InboxRule]:
        """The mailbox's inbox rules in priority order.

        Raises:
            AccessDenied: the user is neither owner nor holder of FullAccess.
        """
        ...

    def create_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        """Add a rule; returns it with its server id.

        Raises:
            AccessDenied: as `inbox_rules`.
            InvalidInput: the server refused a condition or action.
        """
        ...

    def update_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        """Replace the rule with `rule.id`.

        Raises:
            AccessDenied: as `inbox_rules`.
            NotFound, InvalidInput: no such rule, or one the server refuses.
        """
        ...

    def delete_rule(self, mailbox: str, rule_id: str) -> None:
        """Remove a rule.

        Raises:
            AccessDenied: as `inbox_rules`.
            NotFound, InvalidInput: no such rule.
        """
        ...

    def mail_tips(self, sending_as: str, recipients: Sequence[str]) -> Sequence[MailTip]:
        """Tips for mail sent as or on behalf of `sending_as`, one per recipient in order.

        Raises:
            AccessDenied: the user may not send for `sending_as`.
        """
        ...
