"""Mailbox settings over EWS: Get/SetUserOofSettings, Get/UpdateInboxRules, GetMailTips.

exchangelib's UpdateInboxRules services send no MailboxSmtpAddress, so Exchange would change
the signed-in user's own rules; the subclasses here name the mailbox, as Outlook does for a
mailbox it holds FullAccess on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from exchangelib import OofSettings
from exchangelib.properties import Actions, Conditions, MoveToFolder, Rule, SendingAs
from exchangelib.properties import FolderId as ExFolderId
from exchangelib.properties import Mailbox as ExMailbox
from exchangelib.services import GetMailTips
from exchangelib.services.inbox_rules import (
    CreateInboxRule,
    DeleteInboxRule,
    GetInboxRules,
    SetInboxRule,
)
from exchangelib.util import add_xml_child, create_element, set_xml_value

from med.backends.ews.convert import aware_datetime
from med.backends.ews.errors import ews_errors, raise_if_error
from med.errors import InvalidInput, NotFound
from med.mailbox_settings import (
    AutoReplies,
    AutoReplyState,
    ExternalAudience,
    InboxRule,
    MailTip,
)
from med.model import Importance

if TYPE_CHECKING:
    from exchangelib import Account

_STATE = {
    AutoReplyState.DISABLED: OofSettings.DISABLED,
    AutoReplyState.ENABLED: OofSettings.ENABLED,
    AutoReplyState.SCHEDULED: OofSettings.SCHEDULED,
}
_STATE_BACK = {v: k for k, v in _STATE.items()}
_AUDIENCE = {
    ExternalAudience.NONE: "None",
    ExternalAudience.KNOWN: "Known",
    ExternalAudience.ALL: "All",
}
_AUDIENCE_BACK = {v: k for k, v in _AUDIENCE.items()}
_IMPORTANCE = {Importance.LOW: "Low", Importance.NORMAL: "Normal", Importance.HIGH: "High"}
_IMPORTANCE_BACK = {v: k for k, v in _IMPORTANCE.items()}


class _NamedMailbox:
    """UpdateInboxRules for the mailbox in `mailbox`, not the caller's own."""

    mailbox = ""

    def get_payload(self, rule: Rule, remove_outlook_rule_blob: bool = True) -> Any:
        payload = create_element(f"m:{self.SERVICE_NAME}")  # type: ignore[attr-defined]
        add_xml_child(payload, "m:MailboxSmtpAddress", self.mailbox)
        add_xml_child(payload, "m:RemoveOutlookRuleBlob", remove_outlook_rule_blob)
        operations = self._get_operation(rule)  # type: ignore[attr-defined]
        set_xml_value(payload, operations, version=self.account.version)  # type: ignore[attr-defined]
        return payload


class _Create(_NamedMailbox, CreateInboxRule):  # type: ignore[misc]
    pass


class _Set(_NamedMailbox, SetInboxRule):  # type: ignore[misc]
    pass


class _Delete(_NamedMailbox, DeleteInboxRule):  # type: ignore[misc]
    pass


def _run_update(service: type[_NamedMailbox], account: Account, mailbox: str, rule: Rule) -> None:
    call = service(account=account)  # type: ignore[call-arg]
    call.mailbox = mailbox
    for answer in call.call(rule=rule):  # type: ignore[attr-defined]
        raise_if_error(answer, mailbox=mailbox)


def _to_rule(r: Any) -> InboxRule:
    c = r.conditions or Conditions()
    a = r.actions or Actions()
    move = getattr(a, "move_to_folder", None)
    folder_id = getattr(move, "folder_id", None) if move is not None else None
    if folder_id is None and move is not None:
        folder_id = getattr(move, "id", None) and move
    return InboxRule(
        name=str(r.display_name or ""),
        id=str(r.id or ""),
        enabled=bool(r.is_enabled) if r.is_enabled is not None else True,
        priority=int(r.priority or 1),
        from_addresses=tuple(str(x.email_address).lower() for x in c.from_addresses or ()),
        subject_contains=tuple(c.contains_subject_strings or ()),
        sender_contains=tuple(c.contains_sender_strings or ()),
        move_to=str(folder_id.id) if folder_id is not None and folder_id.id else None,
        mark_read=bool(a.mark_as_read),
        importance=_IMPORTANCE_BACK.get(str(a.mark_importance)) if a.mark_importance else None,
        categories=tuple(a.assign_categories or ()),
        forward_to=tuple(str(x.email_address).lower() for x in a.forward_to_recipients or ()),
        delete=bool(a.delete),
        stop=bool(a.stop_processing_rules),
    )


def _from_rule(rule: InboxRule) -> Rule:
    conditions = Conditions(
        from_addresses=list(rule.from_addresses) or None,
        contains_subject_strings=list(rule.subject_contains) or None,
        contains_sender_strings=list(rule.sender_contains) or None,
    )
    actions = Actions(
        move_to_folder=MoveToFolder(folder_id=ExFolderId(id=rule.move_to))
        if rule.move_to
        else None,
        mark_as_read=True if rule.mark_read else None,
        mark_importance=_IMPORTANCE[rule.importance] if rule.importance else None,
        assign_categories=list(rule.categories) or None,
        forward_to_recipients=list(rule.forward_to) or None,
        delete=True if rule.delete else None,
        stop_processing_rules=True if rule.stop else None,
    )
    empty = not (rule.from_addresses or rule.subject_contains or rule.sender_contains)
    return Rule(
        id=rule.id or None,
        display_name=rule.name,
        priority=rule.priority,
        is_enabled=rule.enabled,
        conditions=None if empty else conditions,
        actions=actions,
    )


class EwsSettings:
    """The `SettingsBackend` half of `EwsBackend` (mixed in; uses its accounts)."""

    user: str

    if TYPE_CHECKING:  # EwsBackend's own

        def _account(self, address: str | None = None) -> Account: ...

    def auto_replies(self, mailbox: str) -> AutoReplies:
        with ews_errors(mailbox=mailbox):
            got = self._account(mailbox).oof_settings
        return AutoReplies(
            state=_STATE_BACK.get(str(got.state), AutoReplyState.DISABLED),
            audience=_AUDIENCE_BACK.get(str(got.external_audience), ExternalAudience.ALL),
            start=aware_datetime(got.start) if got.start else None,
            end=aware_datetime(got.end) if got.end else None,
            internal_reply=str(got.internal_reply or ""),
            external_reply=str(got.external_reply or ""),
        )

    def set_auto_replies(self, mailbox: str, replies: AutoReplies) -> None:
        if replies.state is AutoReplyState.SCHEDULED and not (replies.start and replies.end):
            raise InvalidInput(
                "Scheduled automatic replies need a start and an end.", mailbox=mailbox
            )
        settings = OofSettings(
            state=_STATE[replies.state],
            external_audience=_AUDIENCE[replies.audience],
            internal_reply=replies.internal_reply,
            external_reply=replies.external_reply,
        )
        if replies.start and replies.end:
            # exchangelib takes stdlib and zoneinfo zones only: hand it UTC.
            settings.start = replies.start.astimezone(UTC)
            settings.end = replies.end.astimezone(UTC)
        with ews_errors(mailbox=mailbox):
            self._account(mailbox).oof_settings = settings

    def inbox_rules(self, mailbox: str) -> Sequence[InboxRule]:
        account = self._account(mailbox)
        out = []
        with ews_errors(mailbox=mailbox):
            for answer in GetInboxRules(account=account).call(mailbox=mailbox):
                raise_if_error(answer, mailbox=mailbox)
                if answer is not None:
                    out.append(_to_rule(answer))
        return out

    def create_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        before = {r.id for r in self.inbox_rules(mailbox)}
        with ews_errors(mailbox=mailbox):
            _run_update(_Create, self._account(mailbox), mailbox, _from_rule(rule))
        # UpdateInboxRules answers no id; the new rule is the one that was not there before.
        new = [r for r in self.inbox_rules(mailbox) if r.id not in before]
        if not new:
            raise NotFound("The server did not keep the new rule.", mailbox=mailbox)
        return new[-1]

    def update_rule(self, mailbox: str, rule: InboxRule) -> InboxRule:
        with ews_errors(mailbox=mailbox):
            _run_update(_Set, self._account(mailbox), mailbox, _from_rule(rule))
        return next((r for r in self.inbox_rules(mailbox) if r.id == rule.id), rule)

    def delete_rule(self, mailbox: str, rule_id: str) -> None:
        with ews_errors(mailbox=mailbox):
            _run_update(
                _Delete,
                self._account(mailbox),
                mailbox,
                Rule(id=rule_id, display_name="-", priority=1, actions=Actions()),
            )

    def mail_tips(self, sending_as: str, recipients: Sequence[str]) -> Sequence[MailTip]:
        if not recipients:
            return []
        account = self._account()
        out = []
        with ews_errors(mailbox=sending_as):
            answers = GetMailTips(protocol=account.protocol).call(
                sending_as=SendingAs(email_address=sending_as),
                recipients=[ExMailbox(email_address=r) for r in recipients],
                mail_tips_requested="All",
            )
            for address, tip in zip(recipients, answers, strict=False):
                raise_if_error(tip, mailbox=sending_as)
                out.append(_to_tip(address, tip))
        return out


def _to_tip(address: str, tip: Any) -> MailTip:
    ooo = tip.out_of_office
    recipient = tip.recipient_address
    external_members = int(tip.external_member_count or 0)
    total = int(tip.total_member_count or 1)
    return MailTip(
        address=str(getattr(recipient, "email_address", None) or address).lower(),
        name=str(getattr(recipient, "name", None) or ""),
        out_of_office=str(ooo.reply_body or "") if ooo is not None else None,
        out_of_office_start=aware_datetime(ooo.start) if ooo is not None and ooo.start else None,
        out_of_office_end=aware_datetime(ooo.end) if ooo is not None and ooo.end else None,
        # EWS names no scope for one recipient; Exchange counts an outside address as one
        # external member of itself.
        external=total <= 1 and external_members > 0,
        total_members=total,
        external_members=external_members,
        moderated=bool(tip.is_moderated),
        invalid=bool(tip.invalid_recipient),
    )
