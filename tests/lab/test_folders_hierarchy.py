"""The folder hierarchy as Exchange lays a mailbox out, over HTTP (raw SOAP and exchangelib).

The root is `root` without a class; beside Top of Information Store lie the system folders
(Recoverable Items with Deletions/Purges/Versions, Common Views, Finder, ...); every well-known
name resolves; a folder created without a class has none; Unified Messaging leaves voicemail in
the Inbox and the Voicemail folder is a search folder over it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
from exchangelib.folders import VoiceMail

from tests.lab.conftest import LabServer
from tests.lab.schema import assert_valid_ews

M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
WELL_KNOWN = (
    "root",
    "msgfolderroot",
    "outbox",
    "searchfolders",
    "recoverableitemsroot",
    "recoverableitemsdeletions",
    "recoverableitemspurges",
    "recoverableitemsversions",
    "syncissues",
    "conflicts",
    "localfailures",
    "serverfailures",
    "conversationhistory",
    "voicemail",
    "todosearch",
    "recipientcache",
    "quickcontacts",
    "imcontactlist",
    "archiveroot",
    "archivemsgfolderroot",
    "archiverecoverableitemsroot",
    "archiverecoverableitemsdeletions",
)


def messages_of(response: httpx.Response) -> list[ET.Element]:
    assert response.status_code == 200, response.text[:500]
    assert_valid_ews(response.content)
    found = ET.fromstring(response.content).find(f".//{M}ResponseMessages")
    assert found is not None
    return list(found)


def get_folders(lab: LabServer, *names: str, shape: str = "AllProperties") -> list[ET.Element]:
    ids = "".join(f'<t:DistinguishedFolderId Id="{n}"/>' for n in names)
    return messages_of(
        lab.soap(
            "chef",
            f"<m:GetFolder><m:FolderShape><t:BaseShape>{shape}</t:BaseShape></m:FolderShape>"
            f"<m:FolderIds>{ids}</m:FolderIds></m:GetFolder>",
        )
    )


def test_the_root_is_named_root_and_has_no_folder_class(lab: LabServer) -> None:
    [message] = get_folders(lab, "root")
    folder = message.find(f"{M}Folders/{T}Folder")
    assert folder is not None
    assert folder.findtext(f"{T}DisplayName") == "root"
    assert folder.find(f"{T}FolderClass") is None


def test_every_well_known_folder_name_resolves(lab: LabServer) -> None:
    messages = get_folders(lab, *WELL_KNOWN, shape="IdOnly")
    codes = {n: m.findtext(f"{M}ResponseCode") for n, m in zip(WELL_KNOWN, messages, strict=True)}
    assert codes == dict.fromkeys(WELL_KNOWN, "NoError")


def test_system_folders_lie_beside_the_top_of_the_information_store(lab: LabServer) -> None:
    root = lab.account("chef").root
    top = {f.name for f in root.children}
    assert {
        "Common Views",
        "Finder",
        "Recoverable Items",
        "Oberste Ebene des Informationsspeichers",
    } <= top
    recoverable = next(f for f in root.children if f.name == "Recoverable Items")
    assert {f.name for f in recoverable.children} == {"Deletions", "Purges", "Versions"}
    visible = {f.name for f in lab.account("chef").msg_folder_root.children}
    assert {"Postausgang", "Synchronisierungsprobleme", "Unterhaltungsverlauf"} <= visible
    assert not {"Common Views", "Finder", "Recoverable Items"} & visible


def test_a_folder_created_without_a_class_has_none(lab: LabServer) -> None:
    created = messages_of(
        lab.soap(
            "chef",
            '<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/>'
            "</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Ohne Klasse</t:DisplayName>"
            "</t:Folder><t:CalendarFolder><t:DisplayName>Termine</t:DisplayName>"
            "</t:CalendarFolder></m:Folders></m:CreateFolder>",
        )
    )
    ids = [m.find(f".//{T}FolderId") for m in created]
    assert all(i is not None for i in ids)
    fetched = messages_of(
        lab.soap(
            "chef",
            "<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
            "<m:FolderIds>"
            + "".join(f'<t:FolderId Id="{i.get("Id")}"/>' for i in ids if i is not None)
            + "</m:FolderIds></m:GetFolder>",
        )
    )
    plain = fetched[0].find(f"{M}Folders/{T}Folder")
    calendar = fetched[1].find(f"{M}Folders/{T}CalendarFolder")
    assert plain is not None and plain.find(f"{T}FolderClass") is None
    assert calendar is not None and calendar.findtext(f"{T}FolderClass") == "IPF.Appointment"


def test_voicemail_lives_in_the_inbox_and_the_voicemail_folder_searches_it(
    lab: LabServer,
) -> None:
    [message] = get_folders(lab, "voicemail")
    search = message.find(f"{M}Folders/{T}SearchFolder")
    assert search is not None
    assert search.findtext(f"{T}FolderClass") == "IPF.Note.Microsoft.Voicemail"
    chef = lab.account("chef")
    in_inbox = {
        m.id
        for m in chef.inbox.all().only("item_class")
        if m.item_class.startswith("IPM.Note.Microsoft.Voicemail")
    }
    assert len(in_inbox) >= 2
    voicemail = chef.root.get_default_folder(VoiceMail)
    listed = list(voicemail.all().only("item_class", "parent_folder_id", "attachments"))
    assert {m.id for m in listed} == in_inbox
    assert all(m.item_class == "IPM.Note.Microsoft.Voicemail.UM.CA" for m in listed)
    assert all(m.parent_folder_id.id == chef.inbox.id for m in listed)
    assert all(a.content_type == "audio/wav" for m in listed for a in m.attachments)
    assert int(search.findtext(f"{T}TotalCount") or 0) == len(in_inbox)


def test_the_whole_tree_validates_against_the_schema(lab: LabServer) -> None:
    [message] = messages_of(
        lab.soap(
            "chef",
            '<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>AllProperties'
            "</t:BaseShape></m:FolderShape><m:ParentFolderIds>"
            '<t:DistinguishedFolderId Id="root"/></m:ParentFolderIds></m:FindFolder>',
        )
    )
    folders = message.find(f"{M}RootFolder/{T}Folders")
    assert folders is not None
    kinds = {el.tag.rsplit("}", 1)[-1] for el in folders}
    assert {"Folder", "CalendarFolder", "ContactsFolder", "SearchFolder"} <= kinds
