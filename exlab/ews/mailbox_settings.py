"""Settings a mailbox keeps for its clients: automatic replies (Get/SetUserOofSettings) and
user configurations (Get/Create/Update/DeleteUserConfiguration), the folder-associated blobs
Outlook and OWA keep their options in.

Only the owner and holders of FullAccess may read or change them, as on Exchange; a delegate
with folder grants is refused.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET

from exlab.core import mailbox_rights
from exlab.core.errors import denied, not_found
from exlab.core.oof import AUDIENCES, STATES, AutoReply, auto_reply, set_auto_reply
from exlab.core.store import Folder, Mailbox, new_key
from exlab.ews.ids import encode_id, resolve_folder, rights_on
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    fill_error,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)


def may_manage(ctx: EwsContext, address: str) -> bool:
    """The owner, or someone with FullAccess on the mailbox."""
    return mailbox_rights.may_manage(ctx.lab.store, address, ctx.user)


def _mailbox_of_request(ctx: EwsContext, request: Element) -> Mailbox:
    address = text_of(request.find(f"{t('Mailbox')}/{t('Address')}")).lower()
    if not address:
        raise EwsError("ErrorMissingEmailAddress", "A mailbox address is required.")
    mailbox = ctx.lab.store.mailbox(address)
    if mailbox is None or mailbox.kind == "public":
        raise EwsError("ErrorInvalidUserInfo", f"No mailbox with SMTP address {address}.")
    if not may_manage(ctx, mailbox.address):
        raise denied()
    return mailbox


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- automatic replies ----------------------------------------------------------------------------


@operation("GetUserOofSettingsRequest")
def get_user_oof_settings(ctx: EwsContext, request: Element) -> Element:
    root = Element(m("GetUserOofSettingsResponse"))
    result = sub(root, m("ResponseMessage"), ResponseClass="Success")
    try:
        mailbox = _mailbox_of_request(ctx, request)
    except EwsError as err:
        result.set("ResponseClass", "Error")
        fill_error(result, err)
        return root
    sub(result, m("ResponseCode"), "NoError")
    settings = auto_reply(ctx.lab.store, mailbox.address, ctx.lab.now())
    el = sub(root, t("OofSettings"))
    sub(el, t("OofState"), settings.state)
    sub(el, t("ExternalAudience"), settings.audience)
    if settings.start is not None and settings.end is not None:
        duration = sub(el, t("Duration"))
        sub(duration, t("StartTime"), _utc(settings.start))
        sub(duration, t("EndTime"), _utc(settings.end))
    sub(sub(el, t("InternalReply")), t("Message"), settings.internal_reply)
    sub(sub(el, t("ExternalReply")), t("Message"), settings.external_reply)
    sub(root, m("AllowExternalOof"), "All")
    return root


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EwsError("ErrorInvalidUserOofSettings", f"Invalid time {text!r}.") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@operation("SetUserOofSettingsRequest")
def set_user_oof_settings(ctx: EwsContext, request: Element) -> Element:
    root = Element(m("SetUserOofSettingsResponse"))
    result = sub(root, m("ResponseMessage"), ResponseClass="Success")
    try:
        mailbox = _mailbox_of_request(ctx, request)
        given = request.find(t("UserOofSettings"))
        if given is None:
            raise SoapFault(
                "ErrorSchemaValidation",
                "The request failed schema validation: UserOofSettings is required.",
            )
        state = text_of(given.find(t("OofState")))
        audience = text_of(given.find(t("ExternalAudience")), "All")
        if state not in STATES or audience not in AUDIENCES:
            raise SoapFault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: OofState {state!r}, "
                f"ExternalAudience {audience!r}.",
            )
        current = auto_reply(ctx.lab.store, mailbox.address, ctx.lab.now())
        start, end = current.start, current.end
        duration = given.find(t("Duration"))
        if duration is not None:
            start = _instant(text_of(duration.find(t("StartTime"))))
            end = _instant(text_of(duration.find(t("EndTime"))))
        if state == "Scheduled" and (start is None or end is None or start >= end):
            raise EwsError(
                "ErrorInvalidUserOofSettings", "The scheduled window must end after it starts."
            )
        internal = given.find(f"{t('InternalReply')}/{t('Message')}")
        external = given.find(f"{t('ExternalReply')}/{t('Message')}")
        set_auto_reply(
            ctx.lab.store,
            mailbox.address,
            AutoReply(
                state=state,
                audience=audience,
                start=start,
                end=end,
                internal_reply=(internal.text or "") if internal is not None else "",
                external_reply=(external.text or "") if external is not None else "",
            ),
        )
    except EwsError as err:
        result.set("ResponseClass", "Error")
        fill_error(result, err)
        return root
    sub(result, m("ResponseCode"), "NoError")
    return root


# -- user configurations --------------------------------------------------------------------------


def _owa_options(mailbox: Mailbox) -> list[tuple[str, str, str]]:
    """(key, type, value) of the OWA.UserOptions dictionary Outlook on the web keeps."""
    return [
        ("timezone", "String", mailbox.time_zone),
        ("dateformat", "String", "dd.MM.yyyy"),
        ("timeformat", "String", "HH:mm"),
        ("weekstartday", "Integer32", "1"),
        ("workinghoursstarttime", "Integer32", "480"),
        ("workinghoursendtime", "Integer32", "1020"),
        ("workinghourstimezone", "String", mailbox.time_zone),
    ]


def _owa_dictionary(mailbox: Mailbox) -> Element:
    dictionary = Element(t("Dictionary"))
    for key, kind, value in _owa_options(mailbox):
        entry = sub(dictionary, t("DictionaryEntry"))
        key_el = sub(entry, t("DictionaryKey"))
        sub(key_el, t("Type"), "String")
        sub(key_el, t("Value"), key)
        value_el = sub(entry, t("DictionaryValue"))
        sub(value_el, t("Type"), kind)
        sub(value_el, t("Value"), value)
    return dictionary


def _named(ctx: EwsContext, name_el: Element | None) -> tuple[str, Element, Folder]:
    """(name, the folder id element as sent, folder) of a UserConfigurationName."""
    if name_el is None or not name_el.get("Name"):
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: UserConfigurationName is required.",
        )
    folder_el = next(
        (c for c in name_el if c.tag in (t("FolderId"), t("DistinguishedFolderId"))), None
    )
    if folder_el is None:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: folder id missing."
        )
    folder = resolve_folder(ctx, folder_el)
    return name_el.get("Name", ""), folder_el, folder


def _check_access(ctx: EwsContext, folder: Folder, *, write: bool) -> None:
    rights = rights_on(ctx, folder)
    allowed = rights.folder_owner if write else rights.can_read_items
    if not allowed:
        raise denied()


def _stored(ctx: EwsContext, folder: Folder, name: str) -> dict[str, str | None] | None:
    row = ctx.lab.store.query_one(
        "SELECT * FROM user_configurations WHERE folder_id = ? AND name = ?", (folder.id, name)
    )
    if row is None:
        return None
    return {k: row[k] for k in ("change_key", "dictionary", "xml_data", "binary_data")}


def _parsed_parts(config: Element) -> dict[str, str | None]:
    """The parts a request sets: the dictionary as XML text, the data blobs as base64."""
    parts: dict[str, str | None] = {}
    dictionary = config.find(t("Dictionary"))
    if dictionary is not None:
        parts["dictionary"] = ET.tostring(dictionary, encoding="unicode")
    for tag, key in (("XmlData", "xml_data"), ("BinaryData", "binary_data")):
        el = config.find(t(tag))
        if el is not None:
            value = text_of(el)
            try:
                base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                raise SoapFault(
                    "ErrorSchemaValidation", f"The request failed schema validation: {tag}."
                ) from None
            parts[key] = value
    return parts


@operation("GetUserConfiguration", min_version="Exchange2010")
def get_user_configuration(ctx: EwsContext, request: Element) -> Element:
    name, folder_el, folder = _named(ctx, request.find(m("UserConfigurationName")))
    _check_access(ctx, folder, write=False)
    wanted = set(text_of(request.find(m("UserConfigurationProperties"))).split())
    if "All" in wanted:
        wanted |= {"Id", "Dictionary", "XmlData", "BinaryData"}
    mailbox = ctx.lab.store.mailbox(folder.mailbox)
    stored = _stored(ctx, folder, name)
    builtin = name == "OWA.UserOptions" and folder.distinguished == "root" and mailbox is not None
    if stored is None and not builtin:
        raise not_found()
    message = response_message("GetUserConfiguration")
    config = sub(message, m("UserConfiguration"))
    sub(config, t("UserConfigurationName"), Name=name).append(folder_el)
    if "Id" in wanted:
        sub(
            config,
            t("ItemId"),
            Id=encode_id("config", f"{folder.mailbox}:{folder.id}:{name}"),
            ChangeKey=str(stored["change_key"]) if stored else "CQAAAA==",
        )
    if "Dictionary" in wanted:
        if stored is not None and stored["dictionary"]:
            config.append(SafeET.fromstring(stored["dictionary"]))
        elif stored is None and mailbox is not None:
            config.append(_owa_dictionary(mailbox))
    for tag, key in (("XmlData", "xml_data"), ("BinaryData", "binary_data")):
        if tag in wanted and stored is not None and stored[key]:
            sub(config, t(tag), stored[key])
    return response("GetUserConfiguration", [message])


@operation("CreateUserConfiguration", min_version="Exchange2010")
def create_user_configuration(ctx: EwsContext, request: Element) -> Element:
    config = request.find(m("UserConfiguration"))
    if config is None:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: UserConfiguration is required.",
        )
    name, _, folder = _named(ctx, config.find(t("UserConfigurationName")))
    _check_access(ctx, folder, write=True)
    if _stored(ctx, folder, name) is not None:
        raise EwsError(
            "ErrorItemSave", f"A user configuration named {name} already exists in the folder."
        )
    parts = _parsed_parts(config)
    with ctx.lab.store.transaction() as conn:
        conn.execute(
            "INSERT INTO user_configurations (folder_id, name, change_key, dictionary,"
            " xml_data, binary_data) VALUES (?, ?, ?, ?, ?, ?)",
            (
                folder.id,
                name,
                new_key(),
                parts.get("dictionary"),
                parts.get("xml_data"),
                parts.get("binary_data"),
            ),
        )
    return response("CreateUserConfiguration", [response_message("CreateUserConfiguration")])


@operation("UpdateUserConfiguration", min_version="Exchange2010")
def update_user_configuration(ctx: EwsContext, request: Element) -> Element:
    config = request.find(m("UserConfiguration"))
    if config is None:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: UserConfiguration is required.",
        )
    name, _, folder = _named(ctx, config.find(t("UserConfigurationName")))
    _check_access(ctx, folder, write=True)
    stored = _stored(ctx, folder, name)
    if stored is None:
        raise not_found()
    merged = {**stored, **_parsed_parts(config)}
    with ctx.lab.store.transaction() as conn:
        conn.execute(
            "UPDATE user_configurations SET change_key = ?, dictionary = ?, xml_data = ?,"
            " binary_data = ? WHERE folder_id = ? AND name = ?",
            (
                new_key(),
                merged["dictionary"],
                merged["xml_data"],
                merged["binary_data"],
                folder.id,
                name,
            ),
        )
    return response("UpdateUserConfiguration", [response_message("UpdateUserConfiguration")])


@operation("DeleteUserConfiguration", min_version="Exchange2010")
def delete_user_configuration(ctx: EwsContext, request: Element) -> Element:
    name, _, folder = _named(ctx, request.find(m("UserConfigurationName")))
    _check_access(ctx, folder, write=True)
    if _stored(ctx, folder, name) is None:
        raise not_found()
    with ctx.lab.store.transaction() as conn:
        conn.execute(
            "DELETE FROM user_configurations WHERE folder_id = ? AND name = ?", (folder.id, name)
        )
    return response("DeleteUserConfiguration", [response_message("DeleteUserConfiguration")])
