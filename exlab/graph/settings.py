"""Mailbox settings over Graph: `mailboxSettings` (automatic replies), the inbox's
`messageRules` and `getMailTips`, answered from the same core as the EWS face.

Who may: the mailbox's owner or a holder of FullAccess reads and changes automatic replies and
rules (`exlab.core.mailbox_rights.may_manage`), as Exchange Online decides; the delegated
scopes MailboxSettings.Read/ReadWrite admit the request in the first place. Mail tips are for
mail the caller may send for the mailbox in the URL (own, delegate, SendAs), scope Mail.Read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exlab.core import mailbox_rights, mailtips
from exlab.core.errors import ExchangeError
from exlab.core.oof import AutoReply, auto_reply, set_auto_reply
from exlab.core.rules import InboxRule, delete_rule, rules_of, save_rule
from exlab.graph.convert import GraphInputError, dttz_in, parse_utc, utc_text
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    access_denied,
    body_json,
    collection,
    folder_gid,
    from_ews,
    need,
    not_allowed,
    resolve_folder,
)
from exlab.graph.scheduling import working_hours_json

STATUS_OUT = {"Disabled": "disabled", "Enabled": "alwaysEnabled", "Scheduled": "scheduled"}
STATUS_IN = {v.lower(): k for k, v in STATUS_OUT.items()}
AUDIENCE_OUT = {"None": "none", "Known": "contactsOnly", "All": "all"}
AUDIENCE_IN = {v.lower(): k for k, v in AUDIENCE_OUT.items()}
IMPORTANCE = {"low": "Low", "normal": "Normal", "high": "High"}


def handles(rest: list[str]) -> bool:
    """Whether a mailbox-relative path is one of this module's."""
    return (
        rest[:1] == ["mailboxSettings"]
        or rest == ["getMailTips"]
        or (len(rest) >= 3 and rest[0] == "mailFolders" and rest[2] == "messageRules")
    )


def settings_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    if rest[0] == "mailboxSettings":
        return _mailbox_settings(call, rest[1:])
    if rest[0] == "getMailTips":
        if call.method != "POST":
            raise not_allowed()
        return 200, _mail_tips(call)
    return _rules_route(call, rest[1], rest[3:])


def _manage(call: Call, *, write: bool) -> None:
    p = call.principal
    wanted = {"MailboxSettings.ReadWrite"} | (set() if write else {"MailboxSettings.Read"})
    if not (wanted & (p.roles if p.app_only else p.scopes)):
        raise access_denied()
    if not p.app_only and not mailbox_rights.may_manage(
        call.lab.store, call.mailbox, call.ctx.user
    ):
        raise access_denied()


def _input(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None


# -- automatic replies ----------------------------------------------------------------------------


def _replies_json(settings: AutoReply) -> Json:
    out: Json = {
        "status": STATUS_OUT[settings.state],
        "externalAudience": AUDIENCE_OUT[settings.audience],
        "internalReplyMessage": settings.internal_reply,
        "externalReplyMessage": settings.external_reply,
    }
    for key, moment in (
        ("scheduledStartDateTime", settings.start),
        ("scheduledEndDateTime", settings.end),
    ):
        if moment is not None:
            out[key] = {"dateTime": utc_text(moment).rstrip("Z"), "timeZone": "UTC"}
    return out


def _replies_in(current: AutoReply, value: Any) -> AutoReply:
    if not isinstance(value, Mapping):
        raise GraphError(400, "ErrorInvalidRequest", "automaticRepliesSetting must be an object.")
    state = current.state
    if "status" in value:
        state = STATUS_IN.get(str(value["status"]).lower(), "")
        if not state:
            raise GraphError(400, "ErrorInvalidRequest", f"Invalid status {value['status']!r}.")
    audience = current.audience
    if "externalAudience" in value:
        audience = AUDIENCE_IN.get(str(value["externalAudience"]).lower(), "")
        if not audience:
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                f"Invalid externalAudience {value['externalAudience']!r}.",
            )
    start, end = current.start, current.end
    if "scheduledStartDateTime" in value:
        start = parse_utc(
            _input(dttz_in, value["scheduledStartDateTime"], "scheduledStartDateTime")[0]
        )
    if "scheduledEndDateTime" in value:
        end = parse_utc(_input(dttz_in, value["scheduledEndDateTime"], "scheduledEndDateTime")[0])
    if state == "Scheduled" and (start is None or end is None or start >= end):
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "The scheduled end time must be after the scheduled start time.",
        )
    return AutoReply(
        state=state,
        audience=audience,
        start=start,
        end=end,
        internal_reply=str(value.get("internalReplyMessage", current.internal_reply) or ""),
        external_reply=str(value.get("externalReplyMessage", current.external_reply) or ""),
    )


def _mailbox_settings(call: Call, rest: list[str]) -> tuple[int, Any]:
    m = call.method
    store = call.lab.store
    mailbox = store.mailbox(call.mailbox)
    if rest == [] and m == "GET":
        out: Json = {
            "timeZone": mailbox.time_zone if mailbox else "UTC",
            "language": {"locale": "de-DE"},
            "workingHours": working_hours_json(mailbox) if mailbox else None,
        }
        if mailbox_rights.may_manage(store, call.mailbox, call.ctx.user):
            out["automaticRepliesSetting"] = _replies_json(
                auto_reply(store, call.mailbox, call.lab.now())
            )
        return 200, out
    if rest == ["automaticRepliesSetting"] and m == "GET":
        _manage(call, write=False)
        return 200, _replies_json(auto_reply(store, call.mailbox, call.lab.now()))
    if rest == [] and m == "PATCH":
        _manage(call, write=True)
        body = body_json(call)
        current = auto_reply(store, call.mailbox, call.lab.now())
        if "automaticRepliesSetting" in body:
            set_auto_reply(
                store, call.mailbox, _replies_in(current, body["automaticRepliesSetting"])
            )
        return 200, {
            "automaticRepliesSetting": _replies_json(
                auto_reply(store, call.mailbox, call.lab.now())
            )
        }
    raise not_allowed()


# -- message rules --------------------------------------------------------------------------------


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GraphError(400, "ErrorInvalidRequest", f"'{field}' must be a list of strings.")
    return [v for v in value if v]


def _addresses(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GraphError(400, "ErrorInvalidRequest", f"'{field}' must be a list of recipients.")
    out = []
    for entry in value:
        email = entry.get("emailAddress") if isinstance(entry, Mapping) else None
        address = str(email.get("address", "")).lower() if isinstance(email, Mapping) else ""
        if "@" not in address:
            raise GraphError(400, "ErrorInvalidRecipients", f"'{field}' has an invalid address.")
        out.append(address)
    return out


def _rule_in(call: Call, body: Mapping[str, Any], current: InboxRule | None) -> InboxRule:
    applied: dict[str, Any] = dict(current.rule) if current else {}
    applied.pop("face", None)  # the EWS face's copy no longer says what the rule does
    conditions = body.get("conditions")
    if conditions is not None or current is None:
        cond = conditions if isinstance(conditions, Mapping) else {}
        applied["subject_contains"] = _strings(cond.get("subjectContains"), "subjectContains")
        applied["sender_contains"] = _strings(cond.get("senderContains"), "senderContains")
        applied["from"] = _addresses(cond.get("fromAddresses"), "fromAddresses")
        applied["always"] = not cond
    actions = body.get("actions")
    if actions is not None or current is None:
        act = actions if isinstance(actions, Mapping) else {}
        applied.pop("move_to", None)
        if act.get("moveToFolder"):
            applied["move_to"] = resolve_folder(call, str(act["moveToFolder"])).id
        applied["mark_read"] = bool(act.get("markAsRead"))
        applied["delete"] = bool(act.get("delete"))
        applied["stop"] = bool(act.get("stopProcessingRules"))
        applied["categories"] = _strings(act.get("assignCategories"), "assignCategories")
        applied["forward_to"] = _addresses(act.get("forwardTo"), "forwardTo")
        applied.pop("importance", None)
        if act.get("markImportance"):
            importance = IMPORTANCE.get(str(act["markImportance"]).lower())
            if importance is None:
                raise GraphError(400, "ErrorInvalidRequest", "Invalid markImportance.")
            applied["importance"] = importance
    name = str(body.get("displayName", current.display_name if current else "")).strip()
    if not name:
        raise GraphError(400, "ErrorInvalidRequest", "A rule needs a displayName.")
    try:
        sequence = int(body.get("sequence", current.priority if current else 1))
    except (TypeError, ValueError):
        raise GraphError(400, "ErrorInvalidRequest", "sequence must be a number.") from None
    enabled = bool(body.get("isEnabled", current.enabled if current else True))
    return InboxRule(current.id if current else "", call.mailbox, name, sequence, enabled, applied)


def _rule_json(call: Call, rule: InboxRule) -> Json:
    r = rule.rule
    conditions: Json = {}
    if r.get("subject_contains"):
        conditions["subjectContains"] = r["subject_contains"]
    if r.get("sender_contains"):
        conditions["senderContains"] = r["sender_contains"]
    if r.get("from"):
        conditions["fromAddresses"] = [{"emailAddress": {"address": a}} for a in r["from"]]
    actions: Json = {}
    if r.get("move_to"):
        folder = call.lab.store.folder(str(r["move_to"]))
        if folder is not None:
            actions["moveToFolder"] = folder_gid(folder)
    for key, name in (
        ("mark_read", "markAsRead"),
        ("delete", "delete"),
        ("stop", "stopProcessingRules"),
    ):
        if r.get(key):
            actions[name] = True
    if r.get("categories"):
        actions["assignCategories"] = r["categories"]
    if r.get("importance"):
        actions["markImportance"] = str(r["importance"]).lower()
    if r.get("forward_to"):
        actions["forwardTo"] = [{"emailAddress": {"address": a}} for a in r["forward_to"]]
    return {
        "id": rule.id,
        "displayName": rule.display_name,
        "sequence": rule.priority,
        "isEnabled": rule.enabled,
        "hasError": False,
        "isReadOnly": False,
        "conditions": conditions,
        "actions": actions,
    }


def _rules_route(call: Call, folder_ref: str, tail: list[str]) -> tuple[int, Any]:
    m = call.method
    _manage(call, write=m != "GET")
    inbox = resolve_folder(call, folder_ref)
    if inbox.distinguished != "inbox":
        raise GraphError(400, "ErrorInvalidRequest", "Message rules belong to the inbox.")
    store = call.lab.store
    rules = {rule.id: rule for rule in rules_of(store, call.mailbox)}
    if not tail:
        if m == "GET":
            rows = [_rule_json(call, rule) for rule in rules.values()]
            return 200, collection(call, rows, context="messageRule")
        if m == "POST":
            rule = save_rule(store, _rule_in(call, body_json(call), None))
            return 201, _rule_json(call, rule)
        raise not_allowed()
    found = rules.get(tail[0]) if len(tail) == 1 else None
    if found is None:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    if m == "GET":
        return 200, _rule_json(call, found)
    if m == "PATCH":
        return 200, _rule_json(call, save_rule(store, _rule_in(call, body_json(call), found)))
    if m == "DELETE":
        delete_rule(store, call.mailbox, found.id)
        return 204, None
    raise not_allowed()


# -- mail tips ------------------------------------------------------------------------------------


def _mail_tips(call: Call) -> Json:
    need(call, "Mail")
    body = body_json(call)
    addresses = body.get("EmailAddresses", body.get("emailAddresses"))
    if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
        raise GraphError(400, "ErrorInvalidRequest", "EmailAddresses must be a list of addresses.")
    try:
        tips = mailtips.tips_for(call.ctx, call.mailbox, addresses)
    except ExchangeError as err:
        raise from_ews(err) from None
    rows = []
    for tip in tips:
        row: Json = {
            "emailAddress": {"name": tip.display_name, "address": tip.address},
            "recipientScope": "external" if tip.external else "internal",
            "totalMemberCount": tip.total_members,
            "externalMemberCount": tip.external_members,
            "isModerated": tip.moderated,
            "deliveryRestricted": False,
            "mailboxFull": False,
            "maxMessageSize": mailtips.MAX_MESSAGE_SIZE,
        }
        reply = tip.auto_reply
        if reply is not None:
            replies: Json = {"message": tip.auto_reply_text, "messageLanguage": None}
            if reply.state == "Scheduled" and reply.start and reply.end:
                replies["scheduledStartTime"] = {
                    "dateTime": utc_text(reply.start).rstrip("Z"),
                    "timeZone": "UTC",
                }
                replies["scheduledEndTime"] = {
                    "dateTime": utc_text(reply.end).rstrip("Z"),
                    "timeZone": "UTC",
                }
            row["automaticReplies"] = replies
        if tip.invalid:
            row["error"] = {"code": "UnknownRecipient", "message": "The recipient is unknown."}
        rows.append(row)
    return {"value": rows}
