"""What medbridge changes in exchangelib, applied by `install()` when an EWS backend is made.

exchangelib is configured through class attributes, so these changes are process-wide; they
are kept here, behind one explicit call, instead of running at import.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import requests
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.items import (
    CalendarItem,
    MeetingRequest,
    PostItem,
)
from exchangelib.items import Contact as ExContact
from exchangelib.items import Message as ExMessage
from exchangelib.items import Task as ExTask
from exchangelib.properties import Permission as ExPermission
from exchangelib.protocol import BaseProtocol

# --------------------------------------------------------------------------- TLS

#: endpoint URL → requests' `verify` (True, a CA bundle path, or False for labs). exchangelib
#: builds its HTTP sessions itself, so the setting is applied in its adapter class; one
#: setting per endpoint and process (the last backend created for an endpoint wins).
TLS_VERIFY: dict[str, bool | str] = {}
TLS_LOCK = threading.Lock()


class _VerifyingAdapter(requests.adapters.HTTPAdapter):
    """Use the profile's CA bundle (or no verification, labs only) for its endpoint."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = request.url or ""
        with TLS_LOCK:
            for prefix, verify in TLS_VERIFY.items():
                if url.startswith(prefix):
                    kwargs["verify"] = verify
                    break
        return super().send(request, *args, **kwargs)


# --------------------------------------------------------------------------- extended properties


class _FlagStatus(ExtendedProperty):  # type: ignore[misc]
    property_tag = 0x1090  # PR_FLAG_STATUS: 0 none, 1 complete, 2 flagged
    property_type = "Integer"


class _FlagCompleteTime(ExtendedProperty):  # type: ignore[misc]
    property_tag = 0x1091  # PR_FLAG_COMPLETE_TIME
    property_type = "SystemTime"


class _TaskStartDate(ExtendedProperty):  # type: ignore[misc]
    property_set_id = "00062003-0000-0000-C000-000000000046"  # PSETID_Task
    property_id = 0x8104
    property_type = "SystemTime"


class _TaskDueDate(ExtendedProperty):  # type: ignore[misc]
    property_set_id = "00062003-0000-0000-C000-000000000046"
    property_id = 0x8105
    property_type = "SystemTime"


class _VoiceDuration(ExtendedProperty):  # type: ignore[misc]
    property_tag = 0x6801  # PidTagVoiceMessageDuration (seconds)
    property_type = "Integer"


class _VoiceCaller(ExtendedProperty):  # type: ignore[misc]
    property_tag = 0x6802  # PidTagSenderTelephoneNumber
    property_type = "String"


class _MessageClass(ExtendedProperty):  # type: ignore[misc]
    property_tag = 0x001A  # PR_MESSAGE_CLASS, to create sticky notes (ItemClass is read-only)
    property_type = "String"


class _LastVerb(ExtendedProperty):  # type: ignore[misc]
    property_tag = 0x1081  # PR_LAST_VERB_EXECUTED: 102 reply, 103 reply all, 104 forward
    property_type = "Integer"


_EXT_FIELDS: dict[str, type[ExtendedProperty]] = {
    "med_flag_status": _FlagStatus,
    "med_flag_complete": _FlagCompleteTime,
    "med_flag_start": _TaskStartDate,
    "med_flag_due": _TaskDueDate,
    "med_last_verb": _LastVerb,
}
_VOICE_FIELDS: dict[str, type[ExtendedProperty]] = {
    "med_voice_duration": _VoiceDuration,
    "med_voice_caller": _VoiceCaller,
    "med_message_class": _MessageClass,
}


def _register_fields() -> None:
    for cls in (ExMessage, MeetingRequest, PostItem):
        for name, prop in {**_EXT_FIELDS, **_VOICE_FIELDS}.items():
            if cls is not ExMessage and name in _VOICE_FIELDS:
                continue
            with contextlib.suppress(ValueError):
                cls.register(name, prop)
    for cls in (CalendarItem, ExContact, ExTask):
        for name in ("med_flag_status",):
            with contextlib.suppress(ValueError):
                cls.register(name, _EXT_FIELDS[name])


def _fix_permission_fields() -> None:
    """exchangelib 5.6 writes permission entries the EWS schema does not accept: two elements
    under other names (CanCreateSubfolders, CalendarPermissionLevel inside a plain Permission)
    and UserId last. A schema-validating server refuses that; use the schema's names and order
    (for reading too)."""
    from exchangelib.properties import BasePermission

    fixes = (
        (BasePermission, "can_create_subfolders", "CanCreateSubFolders"),
        (ExPermission, "permission_level", "PermissionLevel"),
    )
    for cls, name, element in fixes:
        field = cls.get_field_by_fieldname(name)
        field.field_uri = element
        field.field_uri_postfix = element
    # UserId comes first in the schema's sequence; exchangelib declares it last.
    from exchangelib.properties import CalendarPermission

    for cls in (ExPermission, CalendarPermission):
        fields = list(cls.FIELDS)
        user_id = next(f for f in fields if f.name == "user_id")
        cls.FIELDS = type(cls.FIELDS)(user_id, *[f for f in fields if f is not user_id])


def _protocols_per_login() -> None:
    """exchangelib shares one protocol (with its HTTP sessions and their logins) between all
    configurations of an endpoint with equal credentials, and logins from a ticket cache have
    none: two users' Kerberos logins from caches of their own would share the first one's
    sessions. The auth type names the cache (see `med.auth.negotiate.register`), so it joins
    the key."""
    from exchangelib.protocol import CachingProtocol

    def cache_key(config: Any) -> tuple[Any, ...]:
        return config.service_endpoint, config.credentials, config.auth_type

    CachingProtocol._cache_key = staticmethod(cache_key)


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Apply medbridge's changes to exchangelib once per process (idempotent, thread-safe).

    Called by `EwsBackend.__init__`: until an EWS backend is made, exchangelib stays as shipped.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        BaseProtocol.HTTP_ADAPTER_CLS = _VerifyingAdapter
        _register_fields()
        _fix_permission_fields()
        _protocols_per_login()
        _installed = True
