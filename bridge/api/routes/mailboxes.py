"""Mailboxes the caller works in, their folder trees, well-known folders and delegates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from bridge.api.context import SessionDep, api_json, needs
from bridge.api.problems import PROBLEM_RESPONSES
from bridge.api.schemas import DelegateList, FolderOut, FolderTree, MailboxList

router = APIRouter(prefix="/v1/mailboxes", tags=["mailboxes"], responses=PROBLEM_RESPONSES)

MailboxPath = Annotated[
    str,
    Path(
        description="Mailbox address, `public` for the public folders, `archive:ADDRESS` for "
        "an archive.",
        examples=["chef@musterstadt.example"],
        min_length=1,
        max_length=320,
    ),
]


@router.get("", response_model=MailboxList, dependencies=[needs("read")])
async def list_mailboxes(session: SessionDep) -> Response:
    """Own, delegated, functional and shared mailboxes, archives and the public folders, and
    what the caller's backend can do (`capabilities`), so a client offers only that."""
    return api_json(
        {
            "mailboxes": await session.mailboxes(),
            "backend": session.backend_name,
            "capabilities": sorted(session.capabilities),
        }
    )


@router.get(
    "/{mailbox}/folders", response_model=FolderTree, dependencies=[needs("read", "FolderVisible")]
)
async def folder_tree(session: SessionDep, mailbox: MailboxPath) -> Response:
    """The mailbox's whole folder tree, with the caller's rights on each folder."""
    return api_json(await session.folder_tree(mailbox))


@router.get(
    "/{mailbox}/folders/{name}",
    response_model=FolderOut,
    dependencies=[needs("read", "FolderVisible")],
)
async def well_known_folder(
    session: SessionDep,
    mailbox: MailboxPath,
    name: Annotated[
        str,
        Path(
            description="inbox, calendar, contacts, tasks, notes, drafts, sentitems, "
            "deleteditems, voicemail …",
            pattern=r"^[a-z]{2,40}$",
            examples=["inbox"],
        ),
    ],
) -> Response:
    """A well-known folder of a mailbox (its id opens items, changes and permissions)."""
    return api_json(await session.default_folder(mailbox, name))


@router.get(
    "/{mailbox}/delegates", response_model=DelegateList, dependencies=[needs("read", "FolderOwner")]
)
async def delegates(session: SessionDep, mailbox: MailboxPath) -> Response:
    """Delegates of a mailbox the caller owns and where meeting requests go (EWS only)."""
    found, delivery = await session.delegates(mailbox)
    return api_json({"delegates": found, "meeting_delivery": delivery})
