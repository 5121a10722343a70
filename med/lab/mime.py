"""MimeContent: an item as an RFC 5322 message (what GetItem returns) and back (CreateItem).

Only what a mail client needs: headers (From, Sender, To, Cc, Subject, Date, Message-ID,
Importance, Sensitivity, Keywords), the body as text or HTML, and file attachments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from med.lab.items import Attachment


class MimeError(ValueError):
    """The MIME content cannot be read as a message."""


def _address(mb: Mapping[str, Any]) -> str:
    email = str(mb.get("email", ""))
    name = str(mb.get("name", ""))
    if "@" not in email:
        return name or email
    user, _, domain = email.partition("@")
    return str(Address(display_name=name, username=user, domain=domain))


def to_mime(props: Mapping[str, Any], attachments: Sequence[Attachment] = ()) -> bytes:
    """The item as a MIME message (UTF-8, CRLF line ends as Exchange sends them)."""
    msg = EmailMessage(policy=policy.SMTP)
    if props.get("message:From"):
        msg["From"] = _address(props["message:From"])
    sender = props.get("message:Sender")
    if sender and sender != props.get("message:From"):
        msg["Sender"] = _address(sender)
    for key, header in (("message:ToRecipients", "To"), ("message:CcRecipients", "Cc")):
        if props.get(key):
            msg[header] = ", ".join(_address(r) for r in props[key])
    msg["Subject"] = str(props.get("item:Subject", ""))
    when = props.get("item:DateTimeSent") or props.get("item:DateTimeReceived")
    if when:
        msg["Date"] = format_datetime(datetime.fromisoformat(str(when).replace("Z", "+00:00")))
    if props.get("message:InternetMessageId"):
        msg["Message-ID"] = str(props["message:InternetMessageId"])
    if props.get("item:Importance") and props["item:Importance"] != "Normal":
        msg["Importance"] = str(props["item:Importance"]).lower()
    if props.get("item:Sensitivity") and props["item:Sensitivity"] != "Normal":
        msg["Sensitivity"] = {"Private": "Private", "Personal": "Personal"}.get(
            str(props["item:Sensitivity"]), "Company-Confidential"
        )
    if props.get("item:Categories"):
        msg["Keywords"] = ", ".join(props["item:Categories"])
    body = props.get("item:Body") or {"type": "Text", "text": ""}
    subtype = "html" if body.get("type") == "HTML" else "plain"
    msg.set_content(str(body.get("text", "")), subtype=subtype, charset="utf-8")
    for att in attachments:
        maintype, _, subtype_ = att.content_type.partition("/")
        msg.add_attachment(
            att.content,
            maintype=maintype or "application",
            subtype=subtype_ or "octet-stream",
            filename=att.name,
        )
    return msg.as_bytes()


def _mailboxes(value: str | None) -> list[dict[str, str]]:
    if not value:
        return []
    return [
        {k: v for k, v in (("name", name), ("email", addr.lower())) if v}
        for name, addr in getaddresses([value])
        if addr
    ]


def from_mime(data: bytes) -> dict[str, Any]:
    """Props from a MIME message (attachments are left to the caller's attachment call)."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except (ValueError, TypeError) as exc:
        raise MimeError(str(exc)) from exc
    props: dict[str, Any] = {"item:Subject": str(msg.get("Subject", ""))}
    sender = _mailboxes(msg.get("From"))
    if sender:
        props["message:From"] = sender[0]
    for header, key in (("To", "message:ToRecipients"), ("Cc", "message:CcRecipients")):
        found = _mailboxes(msg.get(header))
        if found:
            props[key] = found
    if msg.get("Message-ID"):
        props["message:InternetMessageId"] = str(msg["Message-ID"])
    if msg.get("Date"):
        try:
            when = parsedate_to_datetime(str(msg["Date"]))
            props["item:DateTimeSent"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (TypeError, ValueError):
            pass
    importance = str(msg.get("Importance", "")).lower()
    if importance in ("high", "low"):
        props["item:Importance"] = importance.capitalize()
    part = msg.get_body(preferencelist=("html", "plain")) if msg.is_multipart() else msg
    if part is not None:
        content = part.get_content() if hasattr(part, "get_content") else ""
        kind = "HTML" if part.get_content_type() == "text/html" else "Text"
        props["item:Body"] = {"type": kind, "text": str(content).replace("\r\n", "\n")}
    return props
