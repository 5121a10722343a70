"""The EWS backend's edge: error table, recurrence and permission conversion (no server)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from exchangelib import errors as exerr

import med
from med import (
    AccessDenied,
    BadCredentials,
    Conflict,
    Daily,
    InvalidInput,
    MedError,
    MonthlyByDate,
    MonthlyByWeekday,
    NotFound,
    Recurrence,
    Role,
    ServerError,
    Throttled,
    Unreachable,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
)
from med.backends.ews import EWS_ERRORS, EwsBackend, translate_error
from med.backends.ews.convert import (
    from_ex_permission,
    from_ex_recurrence,
    to_ex_permission,
    to_ex_recurrence,
)
from med.permissions import permission_for_role


@pytest.mark.parametrize("code", sorted(EWS_ERRORS))
def test_every_code_in_the_table_maps_to_its_class_and_keeps_the_code(code: str) -> None:
    cls = getattr(exerr, code, None)
    if cls is not None:
        exc = cls("server text")
    else:  # what exchangelib raises for a response code it has no class for
        exc = exerr.TransportError(
            f"Unknown ResponseCode in ResponseMessage: {code} (MessageText: x, MessageXml: None)"
        )
    err = translate_error(exc, mailbox="chef@musterstadt.example")
    expected, sentence = EWS_ERRORS[code]
    assert isinstance(err, expected)
    assert err.code == code and str(err) == sentence
    assert err.mailbox == "chef@musterstadt.example"


def _lab_codes() -> set[str]:
    lab = Path(med.__file__).parent.parent / "exlab"
    codes: set[str] = set()
    for source in lab.rglob("*.py"):
        if "graph" in source.relative_to(lab).parts:
            continue  # the Graph face's codes belong to the Graph backend's table
        codes |= set(re.findall(r"\"(Error[A-Z][A-Za-z]+)\"", source.read_text(encoding="utf-8")))
    return codes


def test_every_code_the_lab_emits_has_its_own_entry() -> None:
    codes = _lab_codes()
    assert "ErrorAccessDenied" in codes  # the scan finds the lab's codes
    assert sorted(codes - set(EWS_ERRORS)) == []


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (exerr.ErrorAccessDenied("x"), AccessDenied),
        (exerr.ErrorItemNotFound("x"), NotFound),
        (exerr.ErrorIrresolvableConflict("x"), Conflict),
        (exerr.ErrorInvalidIdMalformed("x"), InvalidInput),
        (exerr.UnauthorizedError("x"), BadCredentials),
        (exerr.ErrorServerBusy("x", back_off=2.5), Throttled),
    ],
)
def test_exchangelib_errors_become_med_errors(exc: Exception, cls: type[MedError]) -> None:
    assert isinstance(translate_error(exc), cls)


def test_server_busy_keeps_the_back_off() -> None:
    err = translate_error(exerr.ErrorServerBusy("busy", back_off=2.5))
    assert isinstance(err, Throttled) and err.retry_after == 2.5


def test_code_exchangelib_does_not_know_is_a_server_error_with_the_code() -> None:
    exc = exerr.TransportError(
        "Unknown ResponseCode in ResponseMessage: ErrorBrandNew (MessageText: x, MessageXml: None)"
    )
    err = translate_error(exc)
    assert type(err) is ServerError and err.code == "ErrorBrandNew"


def test_tls_failure_is_unreachable_and_names_the_ca_bundle() -> None:
    import requests

    def post() -> None:  # what exchangelib's post_ratelimited does on a TLS error
        try:
            raise requests.exceptions.SSLError("certificate verify failed")
        except requests.exceptions.SSLError as e:
            raise exerr.TransportError(str(e))  # noqa: B904

    with pytest.raises(exerr.TransportError) as info:
        post()
    err = translate_error(info.value)
    assert isinstance(err, Unreachable) and "CA bundle" in str(err)


def test_unknown_code_is_a_server_error_with_the_code() -> None:
    class ErrorSomethingNew(exerr.ResponseMessageError):
        pass

    err = translate_error(ErrorSomethingNew("??"))
    assert type(err) is ServerError and err.code == "ErrorSomethingNew"
    assert "ErrorSomethingNew" in str(err)


@pytest.mark.parametrize(
    "rec",
    [
        Recurrence(Daily(3), date(2026, 11, 23), count=4),
        Recurrence(
            Weekly((Weekday.MONDAY, Weekday.FRIDAY), 2, Weekday.SUNDAY),
            date(2026, 11, 23),
            end=date(2027, 1, 31),
        ),
        Recurrence(MonthlyByDate(15, 2), date(2026, 11, 15)),
        Recurrence(MonthlyByWeekday(Weekday.TUESDAY, "second"), date(2026, 12, 8), count=6),
        Recurrence(YearlyByDate(3, 1), date(2027, 3, 1)),
        Recurrence(YearlyByWeekday(5, Weekday.SUNDAY, "last"), date(2027, 5, 30), count=3),
    ],
)
def test_every_recurrence_pattern_converts_both_ways(rec: Recurrence) -> None:
    assert from_ex_recurrence(to_ex_recurrence(rec)) == rec


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.CUSTOM])
@pytest.mark.parametrize("calendar", [True, False])
def test_permission_roles_convert_both_ways(role: Role, calendar: bool) -> None:
    if not calendar and role in (
        Role.FREE_BUSY_TIME_ONLY,
        Role.FREE_BUSY_TIME_AND_SUBJECT_AND_LOCATION,
    ):
        pytest.skip("free/busy roles exist on calendars only")
    perm = permission_for_role("assistenz@musterstadt.example", role)
    back = from_ex_permission(to_ex_permission(perm, calendar=calendar))
    assert back.role is role and back.rights == perm.rights
    assert back.principal == "assistenz@musterstadt.example"


def test_default_entry_converts_as_distinguished_user() -> None:
    back = from_ex_permission(
        to_ex_permission(permission_for_role("default", Role.REVIEWER), calendar=False)
    )
    assert back.principal == "default" and back.role is Role.REVIEWER


def test_backend_refuses_incomplete_settings_before_connecting() -> None:
    with pytest.raises(BadCredentials, match="password"):  # a sign-in error (exit 3)
        EwsBackend(endpoint="http://127.0.0.1:9/EWS/Exchange.asmx", user="a@b.example")
    with pytest.raises(InvalidInput, match="endpoint"):
        EwsBackend(endpoint=None, user="a@b.example", password="x")
    with pytest.raises(InvalidInput, match="e-mail"):
        EwsBackend(endpoint="http://x/EWS/Exchange.asmx", user="nobody", password="x")


@pytest.mark.parametrize("calendar", [True, False])
def test_permission_changes_are_sent_as_the_schema_wants(calendar: bool) -> None:
    from exchangelib import Account, Build, Configuration, Credentials, Version
    from exchangelib.folders import Folder as ExFolder
    from exchangelib.services import UpdateFolder

    from tests.lab.schema import assert_valid_ews

    config = Configuration(
        service_endpoint="http://127.0.0.1:9/EWS/Exchange.asmx",
        credentials=Credentials("chef@musterstadt.example", "x"),
        auth_type="basic",
        version=Version(build=Build(15, 1), api_version="Exchange2016"),
    )
    account = Account(
        "chef@musterstadt.example", config=config, autodiscover=False, access_type="delegate"
    )
    from exchangelib.folders import Root
    from exchangelib.properties import DistinguishedFolderId

    root = Root(account=account, _distinguished_id=DistinguishedFolderId(id="root"))
    from med.backends.ews.convert import CalendarFolder

    folder = (CalendarFolder if calendar else ExFolder)(id="AAMkAD", changekey="CK", root=root)
    entries = [
        to_ex_permission(permission_for_role("default", Role.REVIEWER), calendar=calendar),
        to_ex_permission(
            permission_for_role("assistenz@musterstadt.example", Role.EDITOR), calendar=calendar
        ),
    ]
    from exchangelib.properties import PermissionSet

    folder.permission_set = (
        PermissionSet(calendar_permissions=entries)
        if calendar
        else PermissionSet(permissions=entries)
    )
    service = UpdateFolder(account=account)
    payload = service.get_payload(folders=[(folder, ["permission_set"])])
    assert_valid_ews(service.wrap(content=payload, api_version="Exchange2016"))
