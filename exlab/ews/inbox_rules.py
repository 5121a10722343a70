"""GetInboxRules and UpdateInboxRules: the mailbox's server-side rules.

The rules themselves live in the core (`exlab.core.rules`), which applies them on delivery;
this face reads the EWS Rule element into the conditions and actions the core applies (words
in the subject, sender addresses, words in the sender; move, mark as read, mark importance,
categorise, forward, delete, stop) and keeps the element's own Conditions, Exceptions and
Actions to answer them back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET

from exlab.core.errors import denied
from exlab.core.rules import InboxRule, delete_rule, rules_of, save_rule
from exlab.ews.ids import resolve_folder
from exlab.ews.mailbox_settings import may_manage
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    bool_text,
    fill_error,
    m,
    operation,
    sub,
    t,
    text_of,
)

PARTS = ("Conditions", "Exceptions", "Actions")


def _mailbox(ctx: EwsContext, request: Element) -> str:
    address = text_of(request.find(m("MailboxSmtpAddress"))).lower() or ctx.user
    mailbox = ctx.lab.store.mailbox(address)
    if mailbox is None or mailbox.kind == "public":
        raise EwsError("ErrorInvalidUserInfo", f"No mailbox with SMTP address {address}.")
    if not may_manage(ctx, mailbox.address):
        raise denied()
    return mailbox.address


def _true(el: Element | None, *, default: bool = False) -> bool:
    """An xs:boolean ("true"/"1", "false"/"0"), `default` when absent."""
    if el is None:
        return default
    return text_of(el).lower() in ("true", "1")


def _strings(parent: Element | None, tag: str) -> list[str]:
    if parent is None:
        return []
    return [text_of(s) for s in parent.findall(f"{t(tag)}/{t('String')}") if text_of(s)]


def _applied(ctx: EwsContext, mailbox: str, rule_el: Element) -> dict[str, Any]:
    """What the core applies, read from the Rule's Conditions and Actions."""
    conditions = rule_el.find(t("Conditions"))
    actions = rule_el.find(t("Actions"))
    applied: dict[str, Any] = {
        "subject_contains": _strings(conditions, "ContainsSubjectStrings"),
        "sender_contains": _strings(conditions, "ContainsSenderStrings"),
        "from": [
            text_of(a).lower()
            for a in (
                conditions.findall(f"{t('FromAddresses')}/{t('Address')}/{t('EmailAddress')}")
                if conditions is not None
                else []
            )
        ],
        "always": conditions is None or len(conditions) == 0,
    }
    if actions is not None:
        move = actions.find(t("MoveToFolder"))
        if move is not None and len(move):
            folder = resolve_folder(ctx, move[0])
            if folder.mailbox != mailbox:
                raise EwsError(
                    "ErrorInboxRulesValidationError", "Rules move mail within their mailbox only."
                )
            applied["move_to"] = folder.id
        applied["mark_read"] = _true(actions.find(t("MarkAsRead")))
        applied["delete"] = _true(actions.find(t("Delete")))
        applied["stop"] = _true(actions.find(t("StopProcessingRules")))
        applied["categories"] = _strings(actions, "AssignCategories")
        importance = text_of(actions.find(t("MarkImportance")))
        if importance:
            applied["importance"] = importance
        applied["forward_to"] = [
            text_of(a).lower()
            for a in actions.findall(
                f"{t('ForwardToRecipients')}/{t('Address')}/{t('EmailAddress')}"
            )
            if text_of(a)
        ]
    applied["face"] = {
        part: ET.tostring(el, encoding="unicode")
        for part in PARTS
        if (el := rule_el.find(t(part))) is not None
    }
    return applied


def _rule_from(ctx: EwsContext, mailbox: str, rule_el: Element, rule_id: str = "") -> InboxRule:
    name = text_of(rule_el.find(t("DisplayName")))
    if not name:
        raise EwsError("ErrorInboxRulesValidationError", "A rule needs a DisplayName.")
    try:
        priority = int(text_of(rule_el.find(t("Priority")), "1"))
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "Priority must be a number.") from None
    enabled = _true(rule_el.find(t("IsEnabled")), default=True)
    return InboxRule(rule_id, mailbox, name, priority, enabled, _applied(ctx, mailbox, rule_el))


@operation("GetInboxRules", min_version="Exchange2010_SP1")
def get_inbox_rules(ctx: EwsContext, request: Element) -> Element:
    root = Element(m("GetInboxRulesResponse"), {"ResponseClass": "Success"})
    try:
        mailbox = _mailbox(ctx, request)
    except EwsError as err:
        root.set("ResponseClass", "Error")
        fill_error(root, err)
        return root
    sub(root, m("ResponseCode"), "NoError")
    sub(root, m("OutlookRuleBlobExists"), "false")
    rules = rules_of(ctx.lab.store, mailbox)
    if rules:
        container = sub(root, m("InboxRules"))
        for rule in rules:
            el = sub(container, t("Rule"))
            sub(el, t("RuleId"), rule.id)
            sub(el, t("DisplayName"), rule.display_name)
            sub(el, t("Priority"), str(rule.priority))
            sub(el, t("IsEnabled"), bool_text(rule.enabled))
            kept = rule.rule.get("face") or {}
            for part in PARTS:
                if part in kept:
                    el.append(SafeET.fromstring(kept[part]))
    return root


@operation("UpdateInboxRules", min_version="Exchange2010_SP1")
def update_inbox_rules(ctx: EwsContext, request: Element) -> Element:
    root = Element(m("UpdateInboxRulesResponse"), {"ResponseClass": "Success"})
    operations = request.find(m("Operations"))
    if operations is None:
        raise SoapFault("ErrorSchemaValidation", "UpdateInboxRules needs Operations.")
    try:
        # One savepoint for all operations: a refused one leaves every rule as it was.
        with ctx.lab.store.transaction():
            mailbox = _mailbox(ctx, request)
            known = {rule.id for rule in rules_of(ctx.lab.store, mailbox)}
            for op in operations:
                _apply(ctx, mailbox, known, op)
    except EwsError as err:
        root.set("ResponseClass", "Error")
        fill_error(root, err)
        return root
    sub(root, m("ResponseCode"), "NoError")
    return root


def _apply(ctx: EwsContext, mailbox: str, known: set[str], op: Element) -> None:
    name = op.tag.rsplit("}", 1)[-1]
    rule_el = op.find(t("Rule"))
    if name == "CreateRuleOperation" and rule_el is not None:
        save_rule(ctx.lab.store, _rule_from(ctx, mailbox, rule_el))
    elif name == "SetRuleOperation" and rule_el is not None:
        rule_id = text_of(rule_el.find(t("RuleId")))
        if rule_id not in known:
            raise EwsError("ErrorInboxRulesValidationError", "The rule was not found.")
        save_rule(ctx.lab.store, _rule_from(ctx, mailbox, rule_el, rule_id))
    elif name == "DeleteRuleOperation":
        rule_id = text_of(op.find(t("RuleId")))
        if rule_id not in known or not delete_rule(ctx.lab.store, mailbox, rule_id):
            raise EwsError("ErrorInboxRulesValidationError", "The rule was not found.")
    else:
        raise SoapFault("ErrorSchemaValidation", f"Unknown rule operation {name}.")
