"""Directory operations: GetRoomLists and GetRooms (Outlook's room finder), ExpandDL and
GetMailTips (what Outlook shows while a message is addressed).

Rooms are mailboxes of kind `room` with their own calendars, so GetUserAvailability answers
their free/busy like anyone's; room lists and distribution groups live in `exlab.directory`.
"""

from __future__ import annotations

from exlab.core import directory, mailtips
from exlab.core.store import Store
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    bool_text,
    fill_error,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)


def _address_element(
    parent: Element, tag: str, name: str, address: str, mailbox_type: str
) -> Element:
    el = sub(parent, tag)
    sub(el, t("Name"), name)
    sub(el, t("EmailAddress"), address)
    sub(el, t("RoutingType"), "SMTP")
    sub(el, t("MailboxType"), mailbox_type)
    return el


def _entry(store: Store, address: str) -> tuple[str, str] | None:
    """(display name, MailboxType) of a directory address: a mailbox or a group."""
    mailbox = store.mailbox(address)
    if mailbox is not None and mailbox.kind != "public":
        return mailbox.display_name, "Mailbox"
    group = directory.group(store, address)
    if group is not None:
        return group.display_name, "PublicDL"
    return None


def _single(op: str, children: list[Element], code: str = "NoError") -> Element:
    """A response that is itself the response message (GetRoomLists, GetRooms)."""
    root = Element(
        m(f"{op}Response"), {"ResponseClass": "Success" if code == "NoError" else "Error"}
    )
    if code != "NoError":
        sub(root, m("MessageText"), code)
    sub(root, m("ResponseCode"), code)
    if code != "NoError":
        sub(root, m("DescriptiveLinkKey"), "0")
    for child in children:
        root.append(child)
    return root


@operation("GetRoomLists", min_version="Exchange2010")
def get_room_lists(ctx: EwsContext, request: Element) -> Element:
    lists = Element(m("RoomLists"))
    for group in directory.groups(ctx.lab.store, "roomlist"):
        _address_element(lists, t("Address"), group.display_name, group.address, "PublicDL")
    return _single("GetRoomLists", [lists])


@operation("GetRooms", min_version="Exchange2010")
def get_rooms(ctx: EwsContext, request: Element) -> Element:
    address = text_of(request.find(f"{m('RoomList')}/{t('EmailAddress')}")).lower()
    group = directory.group(ctx.lab.store, address) if address else None
    if group is None or group.kind != "roomlist":
        return _single("GetRooms", [], "ErrorNameResolutionNoResults")
    rooms = Element(m("Rooms"))
    for member in directory.expanded_members(ctx.lab.store, group.address):
        mailbox = ctx.lab.store.mailbox(member)
        if mailbox is not None and mailbox.kind == "room":
            room = sub(rooms, t("Room"))
            _address_element(room, t("Id"), mailbox.display_name, mailbox.address, "Mailbox")
    return _single("GetRooms", [rooms])


@operation("ExpandDL")
def expand_dl(ctx: EwsContext, request: Element) -> Element:
    """One level, as Exchange expands: nested groups come back as PublicDL entries."""
    address = text_of(request.find(f"{m('Mailbox')}/{t('EmailAddress')}")).lower()
    group = directory.group(ctx.lab.store, address) if address else None
    if group is None:
        raise EwsError("ErrorNameResolutionNoResults", "No results were found.")
    members = [
        (member, entry)
        for member in directory.members(ctx.lab.store, group.address)
        if (entry := _entry(ctx.lab.store, member)) is not None
    ]
    message = response_message("ExpandDL")
    message.set("TotalItemsInView", str(len(members)))
    message.set("IncludesLastItemInRange", "true")
    expansion = sub(
        message,
        m("DLExpansion"),
        TotalItemsInView=str(len(members)),
        IncludesLastItemInRange="true",
    )
    for member, (name, kind) in members:
        _address_element(expansion, t("Mailbox"), name, member, kind)
    return response("ExpandDL", [message])


# -- GetMailTips ----------------------------------------------------------------------------------


@operation("GetMailTips", min_version="Exchange2010")
def get_mail_tips(ctx: EwsContext, request: Element) -> Element:
    sending_as = text_of(request.find(f"{m('SendingAs')}/{t('EmailAddress')}")).lower()
    recipients = request.find(m("Recipients"))
    if recipients is None or not sending_as:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: SendingAs and Recipients are required.",
        )
    # exchangelib writes the requested tips as the operation's text, not in MailTipsRequested.
    requested = text_of(request.find(m("MailTipsRequested"))) or (request.text or "").strip()
    wanted = set((requested or "All").split())
    every = "All" in wanted
    root = Element(m("GetMailTipsResponse"), {"ResponseClass": "Success"})
    addresses = [text_of(r.find(t("EmailAddress"))) for r in recipients.findall(t("Mailbox"))]
    try:
        found = mailtips.tips_for(ctx, sending_as, addresses)
    except EwsError as err:
        root.set("ResponseClass", "Error")
        fill_error(root, err)
        return root
    sub(root, m("ResponseCode"), "NoError")
    container = sub(root, m("ResponseMessages"))
    for tip in found:
        message = sub(container, m("MailTipsResponseMessageType"), ResponseClass="Success")
        sub(message, m("ResponseCode"), "NoError")
        tips = sub(message, m("MailTips"))
        kind = "PublicDL" if tip.kind == "Group" else "Mailbox"
        _address_element(tips, t("RecipientAddress"), tip.display_name, tip.address, kind)
        sub(tips, t("PendingMailTips"), "")
        reply = tip.auto_reply
        if (every or "OutOfOfficeMessage" in wanted) and reply is not None:
            ooo = sub(tips, t("OutOfOffice"))
            sub(sub(ooo, t("ReplyBody")), t("Message"), tip.auto_reply_text)
            if reply.state == "Scheduled" and reply.start and reply.end:
                duration = sub(ooo, t("Duration"))
                sub(duration, t("StartTime"), reply.start.strftime("%Y-%m-%dT%H:%M:%SZ"))
                sub(duration, t("EndTime"), reply.end.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if every or "MailboxFullStatus" in wanted:
            sub(tips, t("MailboxFull"), "false")
        if every or "TotalMemberCount" in wanted:
            sub(tips, t("TotalMemberCount"), str(tip.total_members))
        if every or "ExternalMemberCount" in wanted:
            sub(tips, t("ExternalMemberCount"), str(tip.external_members))
        if every or "MaxMessageSize" in wanted:
            sub(tips, t("MaxMessageSize"), str(mailtips.MAX_MESSAGE_SIZE))
        if every or "DeliveryRestriction" in wanted:
            sub(tips, t("DeliveryRestricted"), "false")
        if every or "ModerationStatus" in wanted:
            sub(tips, t("IsModerated"), bool_text(tip.moderated))
        if every or "InvalidRecipient" in wanted:
            sub(tips, t("InvalidRecipient"), bool_text(tip.invalid))
    return root
