"""Shapes on the wire, for the OpenAPI document (answers are built by `med.to_jsonable`).

Items keep med's field names (`from_` is written `from`) and add `type`; ids are the API's
url-safe form (`bridge.api.ids`). Models allow extra fields where a kind adds its own.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CalendarView",
    "Created",
    "DeadLetterList",
    "DelegateList",
    "FolderOut",
    "FolderTree",
    "FreeBusyList",
    "ImportResultOut",
    "ItemOut",
    "ItemPage",
    "MailboxList",
    "MovedOut",
    "PermissionList",
    "Problem",
    "WebhookCreated",
    "WebhookList",
    "WebhookOut",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(_Open):
    """RFC 9457 problem details, with what med knew about the failure."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    missing_right: str | None = Field(None, description="The Exchange right that is missing.")
    retry_after: int | None = None
    feature: str | None = None
    backend: str | None = None


class MailboxOut(_Open):
    address: str
    display_name: str
    kind: str = Field(description="own, delegated, functional, shared, room, public, archive")


class MailboxList(BaseModel):
    mailboxes: list[MailboxOut]
    backend: str = Field(description="ews or graph")
    capabilities: list[str] = Field(
        description="Features the backend has (public_folders, delegates, voicemail, …)."
    )


class FolderOut(_Open):
    id: str
    mailbox: str
    name: str
    kind: str
    parent_id: str | None = None
    distinguished: str | None = None
    total_count: int | None = None
    unread_count: int | None = None
    rights: dict[str, Any] | None = Field(None, description="The caller's effective rights.")


class FolderTree(BaseModel):
    folder: FolderOut
    children: list[FolderTree]


class ItemOut(_Open):
    type: str = Field(description="message, voicemail, event, contact, task or note")
    id: str
    change_key: str | None = None
    folder_id: str | None = None
    mailbox: str | None = None
    kind: str
    subject: str


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int | None = None
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class Created(BaseModel):
    status: str = Field(description="sent, created, ...")
    item: ItemOut | None = None


class MovedOut(BaseModel):
    id: str = Field(description="The item's id in the target folder.")


class CalendarView(BaseModel):
    events: list[ItemOut]


class PermissionOut(_Open):
    principal: str
    role: str


class PermissionList(BaseModel):
    permissions: list[PermissionOut]


class DelegateOut(_Open):
    address: str
    display_name: str
    levels: dict[str, str]


class DelegateList(BaseModel):
    delegates: list[DelegateOut]
    meeting_delivery: str


class FreeBusyOut(_Open):
    address: str
    slots: list[dict[str, Any]]
    error: str | None = None


class FreeBusyList(BaseModel):
    people: list[FreeBusyOut]


class ImportResultOut(BaseModel):
    created: list[ItemOut]
    skipped: int


class WebhookOut(BaseModel):
    id: str
    folder_id: str
    url: str
    position: str | None = None
    delivered: int
    dead_letters: int
    error: str | None = None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="HMAC-SHA256 key of the signatures; shown only once.")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeadLetterOut(BaseModel):
    delivery_id: str
    attempts: int
    last_error: str
    payload: dict[str, Any]
    failed_at: float


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterOut]
