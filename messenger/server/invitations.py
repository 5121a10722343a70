"""Invitation and password-reset e-mails over SMTP (smtp://, smtp+starttls://, smtps://)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit


class MailError(Exception):
    """The invitation could not be handed to the SMTP server."""


def compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message (a tenant's template, filled)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def invitation_message(sender: str, to: str, link: str, tenant: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Your invitation to the {tenant} messenger"
    msg.set_content(
        f"You have been invited to the secure messenger of {tenant}.\n\n"
        f"Open this link in the medbridge app within 14 days to set your password:\n\n"
        f"    {link}\n\n"
        "If you did not expect this message, ignore it; the link expires by itself.\n"
    )
    return msg


def reset_message(sender: str, to: str, link: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Reset your messenger password"
    msg.set_content(
        "Someone asked to reset the password of your messenger account.\n\n"
        "Open this link in the medbridge app within one hour to choose a new one:\n\n"
        f"    {link}\n\n"
        "If it was not you, ignore this message; your password stays as it is.\n"
    )
    return msg


def send(url: str, msg: EmailMessage, timeout: float = 30.0) -> None:
    """Deliver one message; raises MailError with a sentence (never the password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
        raise MailError(
            f"{parts.scheme or url!r} is not an smtp://, smtp+starttls:// or smtps:// URL"
        )
    port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
    try:
        client: smtplib.SMTP
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=timeout)
        with client:
            if parts.scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(
            f"cannot send the message via {parts.hostname}:{port}: {type(exc).__name__}"
        ) from exc
