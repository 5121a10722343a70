"""`public` is the store's name for the public folders, not an address: naming it as a mailbox
is answered like any unknown address, never with the caller's own mailbox."""

from __future__ import annotations

import pytest

from exlab.demo import ASSISTENZ
from tests.lab.conftest import LabServer
from tests.lab.test_folders import soap

PUBLIC_BOX = "<t:Mailbox><t:EmailAddress>public</t:EmailAddress></t:Mailbox>"


@pytest.mark.parametrize("folder", ["inbox", "msgfolderroot", "notes", "calendar"])
def test_get_folder_in_mailbox_public_is_a_nonexistent_mailbox(lab: LabServer, folder: str) -> None:
    body = soap(
        lab,
        ASSISTENZ,
        "<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds><t:DistinguishedFolderId Id="{folder}">{PUBLIC_BOX}'
        "</t:DistinguishedFolderId></m:FolderIds></m:GetFolder>",
    )
    assert b"ErrorNonExistentMailbox" in body
    assert b"Posteingang" not in body and b"<t:DisplayName>" not in body


def test_find_item_and_create_item_in_mailbox_public_change_nothing(lab: LabServer) -> None:
    found = soap(
        lab,
        ASSISTENZ,
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '</m:ItemShape><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox">'
        f"{PUBLIC_BOX}</t:DistinguishedFolderId></m:ParentFolderIds></m:FindItem>",
    )
    assert b"ErrorNonExistentMailbox" in found and b"<t:ItemId" not in found
    created = soap(
        lab,
        ASSISTENZ,
        '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>'
        f'<t:DistinguishedFolderId Id="notes">{PUBLIC_BOX}</t:DistinguishedFolderId>'
        "</m:SavedItemFolderId><m:Items><t:Message><t:Subject>Falsch abgelegt</t:Subject>"
        "</t:Message></m:Items></m:CreateItem>",
    )
    assert b"ErrorNonExistentMailbox" in created
    own = lab.account("assistenz")
    assert not list(own.notes.filter(subject="Falsch abgelegt"))
    assert not list(own.inbox.filter(subject="Falsch abgelegt"))


def test_delegates_of_public_are_refused_and_id_conversion_ignores_it(lab: LabServer) -> None:
    delegates = soap(
        lab,
        ASSISTENZ,
        '<m:GetDelegate IncludePermissions="true"><m:Mailbox>'
        "<t:EmailAddress>public</t:EmailAddress></m:Mailbox></m:GetDelegate>",
    )
    assert b"ErrorNonExistentMailbox" in delegates
    own_inbox = lab.account("assistenz").inbox.id
    converted = soap(
        lab,
        ASSISTENZ,
        '<m:ConvertId DestinationFormat="HexEntryId"><m:SourceIds>'
        f'<t:AlternateId Format="EwsId" Id="{own_inbox}" Mailbox="public"/>'
        "</m:SourceIds></m:ConvertId>",
    )
    # ConvertId reads the mailbox from the id; the Mailbox attribute is never resolved.
    assert b"ErrorNonExistentMailbox" not in converted
    assert f'Mailbox="{ASSISTENZ}"'.encode() in converted
