"""Automatic replies and inbox rules of a mailbox, mail tips before sending, and one search
over several mailboxes.

Automatic replies and rules need FullAccess on the mailbox (or owning it), as Exchange asks;
without it the server refuses and the answer is a 403 problem.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from bridge.api import ids
from bridge.api.context import SessionDep, api_json, folder_by_id, needs
from bridge.api.problems import PROBLEM_RESPONSES
from med import (
    AutoReplies,
    AutoReplyState,
    ExternalAudience,
    Folder,
    InboxRule,
    InvalidInput,
    to_jsonable,
)

router = APIRouter(prefix="/v1", tags=["mailbox settings"], responses=PROBLEM_RESPONSES)

MailboxPath = Annotated[
    str,
    Path(
        description="Mailbox address.",
        examples=["chef@musterstadt.example"],
        pattern=r"^[^@/\s]{1,64}@[^@/\s]{1,255}$",
    ),
]
RuleId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,2000}$")]
Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class AutoRepliesIn(_Body):
    state: Literal["disabled", "enabled", "scheduled"]
    audience: Literal["none", "known", "all"] = "all"
    start: datetime | None = Field(None, description="Scheduled from (with a zone).")
    end: datetime | None = Field(None, description="Scheduled until (with a zone).")
    internal_reply: str = Field("", max_length=8000)
    external_reply: str = Field("", max_length=8000)


class AutoRepliesOut(_Open):
    mailbox: str
    auto_replies: dict[str, Any]


class RuleIn(_Body):
    kind: Literal["move_by_sender", "flag_by_keyword", "forward_to"] = Field(
        description="move_by_sender (sender, folder_id), flag_by_keyword (keyword: marks "
        "important and files in category 'Follow up'), forward_to (address, senders)."
    )
    name: str = Field("", max_length=255)
    sender: Address | None = None
    folder_id: str | None = Field(None, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")
    keyword: str | None = Field(None, min_length=1, max_length=255)
    address: Address | None = None
    senders: list[Address] = Field(default_factory=list, max_length=50)


class RulePatch(_Body):
    enabled: bool


class RuleOut(_Open):
    id: str
    name: str
    enabled: bool


class RuleList(_Open):
    mailbox: str
    rules: list[RuleOut]


class MailTipsIn(_Body):
    recipients: list[Address] = Field(min_length=1, max_length=100)
    from_mailbox: Address | None = Field(
        None, description="The mailbox the message goes out from (default: the caller's)."
    )


class MailTipOut(_Open):
    address: str
    warnings: list[str]


class MailTipList(_Open):
    tips: list[MailTipOut]


class SearchIn(_Body):
    text: str = Field(min_length=1, max_length=255)
    mailboxes: list[Address] = Field(
        default_factory=list, max_length=20, description="Addresses; their inboxes are searched."
    )
    folder_ids: list[Annotated[str, Field(max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")]] = Field(
        default_factory=list, max_length=20, description="Folders (public folders too)."
    )
    limit: int = Field(25, ge=1, le=200)


class SearchOut(_Open):
    query: str
    groups: list[dict[str, Any]]


def _rule_json(rule: InboxRule) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(rule)
    if rule.move_to:
        data["move_to"] = ids.outward_id(rule.move_to)
    data["description"] = rule.describe()
    return data


# -- automatic replies ----------------------------------------------------------------------------


@router.get(
    "/mailboxes/{mailbox}/auto-replies",
    response_model=AutoRepliesOut,
    dependencies=[needs("read", "FullAccess")],
)
async def get_auto_replies(session: SessionDep, mailbox: MailboxPath) -> Response:
    """The mailbox's automatic replies (needs FullAccess on someone else's mailbox)."""
    address = mailbox.lower()
    return api_json({"mailbox": address, "auto_replies": await session.auto_replies(address)})


@router.put(
    "/mailboxes/{mailbox}/auto-replies",
    response_model=AutoRepliesOut,
    dependencies=[needs("manage", "FullAccess")],
)
async def set_auto_replies(
    session: SessionDep, mailbox: MailboxPath, body: AutoRepliesIn
) -> Response:
    """Replace the automatic replies: state, window (scheduled), audience and both texts."""
    address = mailbox.lower()
    for moment in (body.start, body.end):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput("Give start and end with a time zone (…Z or +01:00).")
    replies = AutoReplies(
        state=AutoReplyState(body.state),
        audience=ExternalAudience(body.audience),
        start=body.start,
        end=body.end,
        internal_reply=body.internal_reply,
        external_reply=body.external_reply,
    )
    kept = await session.set_auto_replies(address, replies)
    return api_json({"mailbox": address, "auto_replies": kept})


# -- inbox rules ----------------------------------------------------------------------------------


@router.get(
    "/mailboxes/{mailbox}/rules",
    response_model=RuleList,
    dependencies=[needs("read", "FullAccess")],
)
async def list_rules(session: SessionDep, mailbox: MailboxPath) -> Response:
    """The mailbox's inbox rules in the order the server applies them."""
    address = mailbox.lower()
    rules = await session.inbox_rules(address)
    return api_json({"mailbox": address, "rules": [_rule_json(r) for r in rules]})


@router.post(
    "/mailboxes/{mailbox}/rules",
    response_model=RuleOut,
    status_code=201,
    dependencies=[needs("manage", "FullAccess")],
)
async def create_rule(session: SessionDep, mailbox: MailboxPath, body: RuleIn) -> Response:
    """Create one of the common rules: move by sender, flag by keyword, forward."""
    address = mailbox.lower()
    if body.kind == "move_by_sender":
        if body.sender is None or body.folder_id is None:
            raise InvalidInput("move_by_sender needs sender and folder_id.")
        folder: Folder = await folder_by_id(session, body.folder_id)
        rule = InboxRule.move_by_sender(body.sender, folder, name=body.name)
    elif body.kind == "flag_by_keyword":
        if not body.keyword or not body.keyword.strip():
            raise InvalidInput("flag_by_keyword needs a keyword.")
        rule = InboxRule.flag_by_keyword(body.keyword.strip(), name=body.name)
    else:
        if body.address is None:
            raise InvalidInput("forward_to needs an address.")
        rule = InboxRule.forward_to_assistant(
            body.address, senders=tuple(body.senders), name=body.name
        )
    made = await session.create_rule(address, rule)
    return api_json(_rule_json(made), status=201)


@router.patch(
    "/mailboxes/{mailbox}/rules/{rule_id}",
    response_model=RuleOut,
    dependencies=[needs("manage", "FullAccess")],
)
async def switch_rule(
    session: SessionDep, mailbox: MailboxPath, rule_id: RuleId, body: RulePatch
) -> Response:
    """Switch a rule on or off."""
    rule = await session.enable_rule(mailbox.lower(), ids.inward(rule_id), body.enabled)
    return api_json(_rule_json(rule))


@router.delete(
    "/mailboxes/{mailbox}/rules/{rule_id}",
    status_code=204,
    dependencies=[needs("manage", "FullAccess")],
)
async def delete_rule(session: SessionDep, mailbox: MailboxPath, rule_id: RuleId) -> Response:
    """Remove a rule."""
    await session.delete_rule(mailbox.lower(), ids.inward(rule_id))
    return Response(status_code=204)


# -- mail tips and search -------------------------------------------------------------------------


@router.post("/mail-tips", response_model=MailTipList, dependencies=[needs("send")])
async def mail_tips(session: SessionDep, body: MailTipsIn) -> Response:
    """Before sending: recipients out of office (with their reply), outside addresses, large
    audiences and moderated lists, each with `warnings` worded for the sender."""
    tips = await session.mail_tips(body.recipients, sending_as=body.from_mailbox)
    rows = [{**to_jsonable(t), "warnings": t.warnings()} for t in tips]
    return api_json({"tips": rows})


@router.post("/search", response_model=SearchOut, dependencies=[needs("read", "ReadItems")])
async def search(session: SessionDep, body: SearchIn) -> Response:
    """One search over several mailboxes and folders, hits grouped per mailbox; a mailbox that
    cannot be searched carries its `error` and the rest still answer (403 only when none
    could be searched)."""
    targets: list[str | Folder] = [m.lower() for m in body.mailboxes]
    for folder_id in body.folder_ids:
        targets.append(await folder_by_id(session, folder_id))
    if not targets:
        raise InvalidInput("Name at least one mailbox or folder to search.")
    results = await session.search_mailboxes(body.text, targets, limit=body.limit)
    return api_json(results)
