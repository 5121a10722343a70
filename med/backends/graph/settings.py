"""Mailbox settings over Graph: mailboxSettings/automaticRepliesSetting, the inbox's
messageRules and getMailTips (raw requests on the backend's connection; O365 has no calls
for another user's settings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from med.backends.graph.convert import _dt, _dttz, _make_id, _split_id
from med.errors import InvalidInput
from med.mailbox_settings import (
    AutoReplies,
    AutoReplyState,
    ExternalAudience,
    InboxRule,
    MailTip,
)
from med.model import Importance

_STATUS = {
    AutoReplyState.DISABLED: "disabled",
    AutoReplyState.ENABLED: "alwaysEnabled",
    AutoReplyState.SCHEDULED: "scheduled",
}
_STATUS_BACK = {v.lower(): k for k, v in _STATUS.items()}
_AUDIENCE = {
    ExternalAudience.NONE: "none",
    ExternalAudience.KNOWN: "contactsOnly",
    ExternalAudience.ALL: "all",
}
_AUDIENCE_BACK = {v.lower(): k for k, v in _AUDIENCE.items()}
RULES = "mailFolders/inbox/messageRules"


def _recipients(addresses: Sequence[str]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def _addresses(value: Any) -> tuple[str, ...]:
    return tuple(
        str((r.get("emailAddress") or {}).get("address", "")).lower()
        for r in value or ()
        if isinstance(r, Mapping)
    )


class GraphSettings:
    """The `SettingsBackend` half of `GraphBackend` (mixed in; uses its connection)."""

    user: str

    if TYPE_CHECKING:  # GraphBackend's own

        def _json(self, method: str, mailbox: str | None, path: str, **kw: Any) -> Any: ...

    def auto_replies(self, mailbox: str) -> AutoReplies:
        data = self._json("get", mailbox, "mailboxSettings/automaticRepliesSetting") or {}
        return AutoReplies(
            state=_STATUS_BACK.get(str(data.get("status", "")).lower(), AutoReplyState.DISABLED),
            audience=_AUDIENCE_BACK.get(
                str(data.get("externalAudience", "")).lower(), ExternalAudience.ALL
            ),
            start=_dt(data.get("scheduledStartDateTime")),
            end=_dt(data.get("scheduledEndDateTime")),
            internal_reply=str(data.get("internalReplyMessage") or ""),
            external_reply=str(data.get("externalReplyMessage") or ""),
        )

    def set_auto_replies(self, mailbox: str, replies: AutoReplies) -> None:
        body: dict[str, Any] = {
            "status": _STATUS[replies.state],
            "externalAudience": _AUDIENCE[replies.audience],
            "internalReplyMessage": replies.internal_reply,
            "externalReplyMessage": replies.external_reply,
        }
        if replies.state is AutoReplyState.SCHEDULED and not (replies.start and replies.end):
            raise InvalidInput(
                "Scheduled automatic replies need a start and an end.", mailbox=mailbox
            )
        if replies.start and replies.end:
            body["scheduledStartDateTime"] = _dttz(replies.start)
            body["scheduledEndDateTime"] = _dttz(replies.end)
        self._json("patch", mailbox, "mailboxSettings", data={"automaticRepliesSetting": body})

    def _rule(self, mailbox: str, data: Mapping[str, Any]) -> InboxRule:
        c = data.get("conditions") or {}
        a = data.get("actions") or {}
        move = a.get("moveToFolder")
        importance = str(a.get("markImportance") or "").lower()
        return InboxRule(
            name=str(data.get("displayName") or ""),
            id=str(data.get("id") or ""),
            enabled=bool(data.get("isEnabled", True)),
            priority=int(data.get("sequence") or 1),
            from_addresses=_addresses(c.get("fromAddresses")),
            subject_contains=tuple(c.get("subjectContains") or ()),
            sender_contains=tuple(c.get("senderContains") or ()),
            move_to=_make_id("M", mailbox, str(move)) if move else None,
            mark_read=bool(a.get("markAsRead")),
            importance=Importance(importance) if importance in set(Importance) else None,
            categories=tuple(a.get("assignCategories") or ()),
            forward_to=_addresses(a.get("forwardTo")),
            delete=bool(a.get("delete")),
            stop=bool(a.get("stopProcessingRules")),
        )

    def _rule_body(self, mailbox: str, rule: InboxRule) -> dict[str, Any]:
        conditions: dict[str, Any] = {}
        if rule.from_addresses:
            conditions["fromAddresses"] = _recipients(rule.from_addresses)
        if rule.subject_contains:
            conditions["subjectContains"] = list(rule.subject_contains)
        if rule.sender_contains:
            conditions["senderContains"] = list(rule.sender_contains)
        actions: dict[str, Any] = {}
        if rule.move_to:
            _, box, gid = _split_id(rule.move_to, "M")
            if box != mailbox:
                raise InvalidInput(
                    "A rule moves mail within its own mailbox only.", mailbox=mailbox
                )
            actions["moveToFolder"] = gid
        if rule.mark_read:
            actions["markAsRead"] = True
        if rule.importance:
            actions["markImportance"] = rule.importance.value
        if rule.categories:
            actions["assignCategories"] = list(rule.categories)
        if rule.forward_to:
            actions["forwardTo"] = _recipients(rule.forward_to)
        if rule.delete:
            actions["delete"] = True
        if rule.stop:
            actions["stopProcessingRules"] = True
        return {
            "displayName": rule.name,
            "sequence": rule.priority,
            "isEnabled": rule.enabled,
            "conditions": conditions,
            "actions": actions,
        }

    def inbox_rules(self, mailbox: str) -> Sequence[InboxRule]:
        data = self._json("get", mailbox, RULES) or {}
        return [self._rule(mailbox, r) for r in data.get("value", [])]

    def create_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        made = self._json("post", mailbox, RULES, data=self._rule_body(mailbox, rule))
        return self._rule(mailbox, made)

    def update_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        body = self._rule_body(mailbox, rule)
        return self._rule(mailbox, self._json("patch", mailbox, f"{RULES}/{rule.id}", data=body))

    def delete_rule(self, mailbox: str, rule_id: str) -> None:
        self._json("delete", mailbox, f"{RULES}/{rule_id}")

    def mail_tips(self, sending_as: str, recipients: Sequence[str]) -> Sequence[MailTip]:
        if not recipients:
            return []
        body = {
            "EmailAddresses": list(recipients),
            "MailTipsOptions": "automaticReplies, mailboxFullStatus, maxMessageSize, "
            "moderationStatus, totalMemberCount, externalMemberCount, recipientScope",
        }
        mailbox = None if sending_as == self.user else sending_as
        data = self._json("post", mailbox, "getMailTips", data=body) or {}
        return [_tip(r) for r in data.get("value", [])]


def _tip(row: Mapping[str, Any]) -> MailTip:
    email = row.get("emailAddress") or {}
    replies = row.get("automaticReplies")
    text = replies.get("message") if isinstance(replies, Mapping) else None
    start: datetime | None = None
    end: datetime | None = None
    if isinstance(replies, Mapping):
        start, end = _dt(replies.get("scheduledStartTime")), _dt(replies.get("scheduledEndTime"))
    error = row.get("error") or {}
    return MailTip(
        address=str(email.get("address") or "").lower(),
        name=str(email.get("name") or ""),
        out_of_office=str(text) if text is not None else None,
        out_of_office_start=start,
        out_of_office_end=end,
        external=str(row.get("recipientScope") or "").lower().startswith("external"),
        total_members=int(row.get("totalMemberCount") or 1),
        external_members=int(row.get("externalMemberCount") or 0),
        moderated=bool(row.get("isModerated")),
        invalid=str(error.get("code") or "") == "UnknownRecipient",
    )
