"""FindPeople and GetPersona (Exchange 2013): a folder's contacts as personas, the people
pickers of Outlook on the web and of clients built on the 2013 API.

A persona here is one contact item (Exchange merges contacts of one person across folders
into one persona; the lab's contacts are distinct people). The persona id names the contact.
"""

from __future__ import annotations

from typing import Any

from exlab.core import items as store_items
from exlab.core.errors import not_found
from exlab.core.ids import decode_id, encode_id
from exlab.core.targets import Target, check_read, hidden, rights
from exlab.ews.ids import resolve_folder
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    fill_error,
    m,
    operation,
    sub,
    t,
    text_of,
)


def _persona(parent: Element, item: store_items.Item, *, full: bool) -> Element:
    p: dict[str, Any] = item.props
    el = sub(parent, t("Persona"))
    sub(el, t("PersonaId"), Id=encode_id("persona", item.id))
    sub(el, t("PersonaType"), "Person")
    name = str(p.get("contacts:DisplayName") or p.get("item:Subject") or "")
    sub(el, t("DisplayName"), name)
    if p.get("contacts:GivenName"):
        sub(el, t("GivenName"), str(p["contacts:GivenName"]))
    if p.get("contacts:Surname"):
        sub(el, t("Surname"), str(p["contacts:Surname"]))
    if p.get("contacts:CompanyName"):
        sub(el, t("CompanyName"), str(p["contacts:CompanyName"]))
    emails = [str(v) for v in (p.get("contacts:EmailAddresses") or {}).values() if v]
    if emails:
        address = sub(el, t("EmailAddress"))
        sub(address, t("Name"), name)
        sub(address, t("EmailAddress"), emails[0])
        sub(address, t("RoutingType"), "SMTP")
        if full:
            many = sub(el, t("EmailAddresses"))
            for email in emails:
                one = sub(many, t("Address"))
                sub(one, t("Name"), name)
                sub(one, t("EmailAddress"), email)
                sub(one, t("RoutingType"), "SMTP")
    return el


def _matches(item: store_items.Item, query: str) -> bool:
    if not query:
        return True
    p = item.props
    haystack = " ".join(
        [
            str(p.get("contacts:DisplayName") or ""),
            str(p.get("contacts:CompanyName") or ""),
            *[str(v) for v in (p.get("contacts:EmailAddresses") or {}).values()],
        ]
    ).lower()
    return all(word in haystack for word in query.lower().split())


@operation("FindPeople", min_version="Exchange2013")
def find_people(ctx: EwsContext, request: Element) -> Element:
    root = Element(m("FindPeopleResponse"), {"ResponseClass": "Success"})
    parent = request.find(m("ParentFolderId"))
    if parent is None or not len(parent):
        raise SoapFault("ErrorSchemaValidation", "FindPeople needs ParentFolderId.")
    view = request.find(m("IndexedPageItemView"))
    try:
        offset = int(view.get("Offset", "0")) if view is not None else 0
        limit = int(view.get("MaxEntriesReturned", "100")) if view is not None else 100
    except ValueError:
        raise SoapFault(
            "ErrorSchemaValidation", "Offset and MaxEntriesReturned are numbers."
        ) from None
    try:
        folder = resolve_folder(ctx, parent[0])
        folder_rights = rights(ctx, folder)
        if not folder_rights.can_read_items:
            raise EwsError(
                "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
    except EwsError as err:
        root.set("ResponseClass", "Error")
        fill_error(root, err)
        return root
    query = text_of(request.find(m("QueryString")))
    people = [
        item
        for item in store_items.items_in(ctx.lab.store, folder.id)
        if item.item_class.startswith("IPM.Contact")
        and not hidden(ctx, item, folder_rights)
        and _matches(item, query)
    ]
    people.sort(key=lambda i: str(i.props.get("contacts:DisplayName") or "").lower())
    sub(root, m("ResponseCode"), "NoError")
    container = sub(root, m("People"))
    for item in people[offset : offset + limit]:
        _persona(container, item, full=False)
    sub(root, m("TotalNumberOfPeopleInView"), str(len(people)))
    sub(root, m("FirstMatchingRowIndex"), str(offset))
    sub(root, m("FirstLoadedRowIndex"), str(offset))
    return root


@operation("GetPersona", min_version="Exchange2013")
def get_persona(ctx: EwsContext, request: Element) -> Element:
    root = Element(m("GetPersonaResponseMessage"), {"ResponseClass": "Success"})
    id_el = request.find(m("PersonaId"))
    if id_el is None:
        id_el = request.find(t("PersonaId"))
    try:
        if id_el is None:
            raise EwsError("ErrorInvalidIdEmpty", "The persona id is missing.")
        kind, key = decode_id(id_el.get("Id"))
        item = store_items.get_item(ctx.lab.store, key) if kind == "persona" else None
        folder = ctx.lab.store.folder(item.folder_id) if item is not None else None
        if item is None or folder is None or not item.item_class.startswith("IPM.Contact"):
            raise not_found()
        check_read(ctx, Target(item, folder))
    except EwsError as err:
        root.set("ResponseClass", "Error")
        fill_error(root, err)
        return root
    sub(root, m("ResponseCode"), "NoError")
    persona = _persona(root, item, full=True)
    persona.tag = m("Persona")
    return root
