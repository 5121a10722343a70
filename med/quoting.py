"""Answered and forwarded mail: subject prefixes, recipients and the quoted original, the same
wherever a reply is composed (a client before sending, or a backend whose server cannot).

The prefixes are the ones the server writes for its own replies and forwards ("RE: ", and
"WG: " as our forwards have always gone out), so a subject shown while writing is the subject
sent.
"""

from __future__ import annotations

from med.model import Address, Message

__all__ = ["FORWARD_PREFIX", "REPLY_PREFIX", "answer_subject", "quote_header", "reply_recipients"]

REPLY_PREFIX = "RE: "
FORWARD_PREFIX = "WG: "
#: Prefixes a subject may already carry (German and English Outlook, and ours).
_ANSWERED = ("re:", "aw:", "fw:", "fwd:", "wg:")


def answer_subject(subject: str, *, forward: bool) -> str:
    """The subject of a reply or forward: prefixed once, never "RE: AW: ..."."""
    if subject.strip().lower().startswith(_ANSWERED):
        return subject.strip()
    return (FORWARD_PREFIX if forward else REPLY_PREFIX) + subject.strip()


def reply_recipients(
    original: Message, *, reply_all: bool, me: set[str]
) -> tuple[tuple[Address, ...], tuple[Address, ...]]:
    """To and Cc of a reply, as Exchange fills them: Reply-To (else From); with reply-all the
    other To and Cc recipients too, without the mailboxes in `me` (lower-case addresses)."""
    to = list(original.reply_to or ((original.from_,) if original.from_ else ()))
    cc: list[Address] = []
    if reply_all:
        to += [a for a in original.to if a.email.lower() not in me]
        cc = [a for a in original.cc if a.email.lower() not in me]
    seen: set[str] = set()
    unique_to = []
    for a in to:
        if a.email.lower() not in seen:
            seen.add(a.email.lower())
            unique_to.append(a)
    unique_cc = []
    for a in cc:
        if a.email.lower() not in seen:
            seen.add(a.email.lower())
            unique_cc.append(a)
    return tuple(unique_to), tuple(unique_cc)


def quote_header(original: Message) -> str:
    """The lines above a quoted original, as Outlook writes them (German)."""
    return "\n".join(
        [
            "-----Ursprüngliche Nachricht-----",
            f"Von: {original.from_ or ''}",
            f"Gesendet: {original.sent.isoformat() if original.sent else ''}",
            f"An: {', '.join(str(a) for a in original.to)}",
            *([f"Cc: {', '.join(str(a) for a in original.cc)}"] if original.cc else []),
            f"Betreff: {original.subject}",
            "",
        ]
    )
