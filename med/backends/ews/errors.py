"""EWS response codes and exchangelib errors translated into med's error tree, in one table.

An unknown code becomes `ServerError` keeping the code; `ews_errors` is the one place where
exchangelib exceptions are caught.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import requests
from exchangelib import errors as exerr

from med.auth import negotiate
from med.backends.answers import is_web_page, proxy_error_is_407, proxy_refused, web_page
from med.errors import (
    AccessDenied,
    AuthError,
    BadCredentials,
    Conflict,
    EwsDisabled,
    InvalidInput,
    KerberosError,
    MedError,
    NotFound,
    ServerError,
    Throttled,
    Unreachable,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- error table

#: EWS response code → (MedError class, sentence). Unknown codes → ServerError with the code.
EWS_ERRORS: dict[str, tuple[type[MedError], str]] = {
    "ErrorAccessDenied": (
        AccessDenied,
        "The server refused access; your rights do not allow this.",
    ),
    "ErrorDelegateNoUser": (AccessDenied, "You are not a delegate of this mailbox."),
    "ErrorNotDelegate": (AccessDenied, "You are not a delegate of this mailbox."),
    "ErrorSendAsDenied": (
        AccessDenied,
        "You may not send as or on behalf of this mailbox; ask its owner for "
        "send-on-behalf rights.",
    ),
    "ErrorFolderNotFound": (NotFound, "The folder does not exist or is not visible to you."),
    "ErrorItemNotFound": (NotFound, "The item does not exist any more."),
    "ErrorNonExistentMailbox": (NotFound, "There is no such mailbox."),
    "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange": (
        NotFound,
        "The series has no such occurrence.",
    ),
    "ErrorSubscriptionNotFound": (NotFound, "The subscription has ended; subscribe again."),
    "ErrorNameResolutionNoResults": (NotFound, "No mailbox matches that name."),
    "ErrorServerBusy": (Throttled, "The server is busy or your request budget is used up."),
    "ErrorIrresolvableConflict": (
        Conflict,
        "The item was changed elsewhere since you read it; reload it and try again.",
    ),
    "ErrorChangeKeyRequiredForWriteOperations": (Conflict, "Reload the item and try again."),
    "ErrorStaleObject": (Conflict, "The item was changed elsewhere; reload it and try again."),
    "ErrorInvalidIdMalformed": (InvalidInput, "That is not a valid id."),
    "ErrorInvalidId": (InvalidInput, "That is not a valid id."),
    "ErrorInvalidIdNotAnItemAttachmentId": (InvalidInput, "That is not a valid attachment id."),
    "ErrorInvalidRecipients": (InvalidInput, "A recipient address is not valid."),
    "ErrorInvalidSyncStateData": (
        InvalidInput,
        "The sync state does not belong to this folder; start the sync from the beginning.",
    ),
    "ErrorInvalidPropertySet": (InvalidInput, "This field cannot be changed on this item."),
    "ErrorInvalidPropertyRequest": (InvalidInput, "This field cannot be asked for here."),
    "ErrorInvalidRestriction": (InvalidInput, "The filter cannot be applied to this folder."),
    "ErrorSchemaValidation": (InvalidInput, "The server rejected the request as malformed."),
    "ErrorInvalidRequest": (InvalidInput, "The server rejected the request as invalid."),
    "ErrorInvalidOperation": (InvalidInput, "The server does not allow this operation here."),
    "ErrorCalendarEndDateIsEarlierThanStartDate": (
        InvalidInput,
        "An event cannot end before it starts.",
    ),
    "ErrorCalendarInvalidRecurrence": (InvalidInput, "The recurrence is not valid."),
    "ErrorCalendarViewRangeTooBig": (
        InvalidInput,
        "The calendar range is too long for the server (at most two years).",
    ),
    "ErrorExceededFindCountLimit": (
        InvalidInput,
        "Too many entries in that range for the server; ask for a shorter range.",
    ),
    "ErrorCalendarIsNotOrganizer": (
        InvalidInput,
        "Only the organizer can change or cancel this meeting.",
    ),
    "ErrorCalendarIsOrganizerForAccept": (InvalidInput, "You organise this meeting yourself."),
    "ErrorMessageSizeExceeded": (InvalidInput, "The message is too large for the server."),
    "ErrorQuotaExceeded": (ServerError, "The mailbox is full."),
    "ErrorInvalidSubscription": (InvalidInput, "The subscription is not valid; subscribe again."),
    "ErrorExpiredSubscription": (NotFound, "The subscription has expired; subscribe again."),
    "ErrorMailboxStoreUnavailable": (Unreachable, "The mailbox database is not available."),
    "ErrorConnectionFailed": (Unreachable, "The server could not reach the mailbox."),
    "ErrorTimeoutExpired": (
        Unreachable,
        "The server cannot be reached or did not answer in time.",
    ),
    "ErrorInternalServerError": (ServerError, "The server failed on this request."),
    "ErrorInternalServerTransientError": (ServerError, "The server failed; try again later."),
    "ErrorUserNotAllowedByPolicy": (
        EwsDisabled,
        "EWS is switched off for this user or app by the administrator (Exchange Online "
        "refuses EWS to apps its tenant has not allowed); ask for EWS to be allowed for "
        "medbridge, or use a Graph profile.",
    ),
    "ErrorAccountDisabled": (AccessDenied, "This account is disabled."),
    "ErrorNoPublicFolderReplicaAvailable": (
        Unreachable,
        "The public folders are not available right now.",
    ),
    "ErrorCannotOpenFileAttachment": (ServerError, "The server cannot open this attachment."),
    "ErrorArchiveMailboxNotEnabled": (NotFound, "This mailbox has no archive."),
    "ErrorCalendarOccurrenceIsDeletedFromRecurrence": (
        NotFound,
        "This occurrence was deleted from the series.",
    ),
    "ErrorRecurrenceHasNoOccurrence": (InvalidInput, "The series would have no occurrence."),
    "ErrorUnsupportedRecurrence": (InvalidInput, "Exchange cannot keep this recurrence."),
    "ErrorMimeContentConversionFailed": (ServerError, "The server could not render the MIME."),
    "ErrorAttachmentSizeLimitExceeded": (InvalidInput, "The attachment is too large."),
    "ErrorCalendarCannotMoveOrCopyOccurrence": (
        InvalidInput,
        "A single occurrence cannot be moved or copied; move the series.",
    ),
    "ErrorCalendarInvalidDayForTimeChangePattern": (InvalidInput, "The time zone is not valid."),
    "ErrorDeleteDistinguishedFolder": (InvalidInput, "Well-known folders cannot be deleted."),
    "ErrorMoveDistinguishedFolder": (InvalidInput, "Well-known folders cannot be moved."),
    "ErrorFolderExists": (Conflict, "A folder with this name exists already."),
    "ErrorImpersonateUserDenied": (AccessDenied, "Impersonation is not allowed for you."),
    "ErrorInvalidExtendedProperty": (InvalidInput, "An extended property is not valid."),
    "ErrorInvalidFolderId": (InvalidInput, "That is not a valid folder id."),
    "ErrorInvalidIdEmpty": (InvalidInput, "An id is missing."),
    "ErrorInvalidIndexedPagingParameters": (InvalidInput, "The page offset or size is not valid."),
    "ErrorInvalidItemForOperationSendItem": (InvalidInput, "Only drafts can be sent."),
    "ErrorInvalidMergedFreeBusyInterval": (InvalidInput, "The free/busy interval is not valid."),
    "ErrorInvalidParameter": (InvalidInput, "A parameter of the request is not valid."),
    "ErrorInvalidPermissionSettings": (InvalidInput, "These permission settings are not valid."),
    "ErrorInvalidPropertyDelete": (InvalidInput, "This field cannot be cleared."),
    "ErrorInvalidPushSubscriptionUrl": (InvalidInput, "The push notification URL is not valid."),
    "ErrorInvalidRecurrence": (InvalidInput, "The recurrence is not valid."),
    "ErrorInvalidReferenceItem": (
        InvalidInput,
        "This item cannot be answered, forwarded or accepted this way.",
    ),
    "ErrorInvalidServerVersion": (
        ServerError,
        "The server does not speak the requested EWS version; set the profile's version.",
    ),
    "ErrorInvalidTimeInterval": (InvalidInput, "The time range is not valid."),
    "ErrorTimeIntervalTooBig": (InvalidInput, "The time range is too long; ask for less."),
    "ErrorInvalidUser": (NotFound, "There is no such user."),
    "ErrorInvalidUserInfo": (InvalidInput, "The user information is not valid."),
    "ErrorInvalidValueForProperty": (InvalidInput, "A field has a value the server refuses."),
    "ErrorPropertyValidationFailure": (InvalidInput, "A field has a value the server refuses."),
    "ErrorInvalidWatermark": (
        InvalidInput,
        "The notification watermark is not valid; subscribe again.",
    ),
    "ErrorMailRecipientNotFound": (NotFound, "No mailbox has that address."),
    "ErrorMissingEmailAddress": (InvalidInput, "An e-mail address is missing."),
    "ErrorMessageDispositionRequired": (InvalidInput, "The request does not say whether to send."),
    "ErrorMoveCopyFailed": (ServerError, "The server could not move or copy the item."),
    "ErrorNameResolutionMultipleResults": (
        InvalidInput,
        "The name matches several mailboxes; give the address.",
    ),
    "ErrorNoFreeBusyAccess": (AccessDenied, "You may not see this person's free/busy times."),
    "ErrorSubscriptionAccessDenied": (AccessDenied, "This subscription belongs to someone else."),
    "ErrorTimeZone": (InvalidInput, "The time zone is not valid."),
    "ErrorUnsupportedPathForQuery": (InvalidInput, "The list cannot be filtered or sorted so."),
    "ErrorUnsupportedTypeForConversion": (
        InvalidInput,
        "This kind of attachment is not supported.",
    ),
    "ErrorCannotArchiveCalendarContactTaskFolderException": (
        InvalidInput,
        "Calendar, contact and task folders cannot be archived; only mail is.",
    ),
    "ErrorCannotArchiveItemsInArchiveMailbox": (
        InvalidInput,
        "The item is in the archive already.",
    ),
    "ErrorCannotArchiveItemsInPublicFolders": (
        InvalidInput,
        "Items in public folders cannot be archived.",
    ),
    "ErrorCorruptData": (InvalidInput, "The server could not read the data sent to it."),
    "ErrorInboxRulesValidationError": (
        InvalidInput,
        "The server refused the inbox rule; a condition or action of it is not valid.",
    ),
    "ErrorInvalidItemForOperationCreateItemAttachment": (
        InvalidInput,
        "This kind of item cannot be attached to another item.",
    ),
    "ErrorInvalidSubscriptionRequest": (
        InvalidInput,
        "The server refused the subscription request as given.",
    ),
    "ErrorInvalidUserOofSettings": (
        InvalidInput,
        "The out-of-office settings are not valid (check the start and end times).",
    ),
    "ErrorItemSave": (Conflict, "The server could not save the item; it may exist already."),
}


class ProxyRefused(exerr.TransportError):  # type: ignore[misc]
    """A proxy between us and the server asked for its own credentials (HTTP 407)."""


class NotEwsAnswer(exerr.TransportError):  # type: ignore[misc]
    """The answer is a web page (a reverse proxy's error page, a sign-in portal), not SOAP."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} with an HTML page instead of SOAP")
        self.status = status


EWS_ENDPOINT = "the EWS endpoint (https://<host>/EWS/Exchange.asmx)"

_UNKNOWN_CODE = re.compile(r"Unknown ResponseCode in ResponseMessage: (\w+)")


def translate_error(
    exc: BaseException,
    *,
    mailbox: str | None = None,
    folder: str | None = None,
    item: str | None = None,
) -> MedError:
    """The MedError for an exchangelib or requests error (most specific first)."""
    context = {"mailbox": mailbox, "folder": folder, "item": item}
    if isinstance(exc, MedError):
        return exc
    if isinstance(exc, negotiate.NegotiateError):
        return negotiate_error(exc, **context)
    if isinstance(exc, ProxyRefused) or proxy_error_is_407(exc):
        return proxy_refused(mailbox=mailbox, folder=folder, item=item)
    if isinstance(exc, NotEwsAnswer):
        return web_page(exc.status, EWS_ENDPOINT, mailbox=mailbox, folder=folder, item=item)
    if isinstance(exc, exerr.RateLimitError):
        if not _saw_response() or getattr(seen_response, "status", 200) in (502, 503, 504):
            return Unreachable(
                "The server cannot be reached or is unavailable; try again later.",
                code="RateLimitError",
                **context,
            )
        wait = getattr(exc, "wait", None)
        return Throttled(
            f"The server is busy; try again in {int(wait or 60)} s.",
            retry_after=float(wait) if wait else None,
            **context,
        )
    if isinstance(exc, exerr.ErrorServerBusy):
        back_off = getattr(exc, "back_off", None)
        return Throttled(
            EWS_ERRORS["ErrorServerBusy"][1],
            retry_after=float(back_off) if back_off else None,
            code="ErrorServerBusy",
            **context,
        )
    if isinstance(exc, exerr.UnauthorizedError):
        return BadCredentials(
            "The server did not accept your user name or password (or your Kerberos ticket).",
            code="401",
            **context,
        )
    if isinstance(exc, exerr.CASError):
        return ServerError(
            f"The server's front end refused the request ({exc.cas_error}).",
            code="CASError",
            **context,
        )
    if isinstance(exc, exerr.ResponseMessageError):
        code = type(exc).__name__
        if code == "ResponseMessageError" or code.startswith("Error") is False:
            code = "ResponseMessageError"
        cls, sentence = EWS_ERRORS.get(code, (ServerError, ""))
        if not sentence:
            sentence = f"The server answered {code}."
        if cls is Throttled:
            return Throttled(sentence, code=code, mailbox=mailbox, folder=folder, item=item)
        return cls(sentence, code=code, mailbox=mailbox, folder=folder, item=item)
    if isinstance(exc, exerr.SOAPError | exerr.MalformedResponseError):
        return ServerError(
            "The server's answer could not be understood.", code=type(exc).__name__, **context
        )
    if isinstance(exc, exerr.RedirectError):
        return Unreachable(
            "The server redirected the request; check the EWS endpoint address.",
            code="Redirect",
            **context,
        )
    if type(exc) is exerr.TransportError:
        # exchangelib raises the bare TransportError for two things: a TLS failure (the SSL
        # error is the context) and a response code it has no class for (only in the text).
        cause = exc.__context__
        if isinstance(
            cause, exerr.EWSError | requests.exceptions.RequestException
        ) and not isinstance(cause, requests.exceptions.SSLError):
            # e.g. the version probe wraps the connection error it met
            return translate_error(cause, mailbox=mailbox, folder=folder, item=item)
        if isinstance(cause, requests.exceptions.SSLError | ssl.SSLError):
            return Unreachable(
                "Cannot connect to the server securely (TLS verification failed); check the "
                "address and the CA bundle.",
                code="TLS",
                **context,
            )
        match = _UNKNOWN_CODE.search(str(exc))
        code = match.group(1) if match else "TransportError"
        cls, sentence = EWS_ERRORS.get(code, (ServerError, f"The server answered {code}."))
        return cls(sentence, code=code, **context)
    if isinstance(exc, requests.exceptions.SSLError):
        return Unreachable(
            "TLS verification of the server failed; check the CA bundle.",
            code="SSLError",
            **context,
        )
    if isinstance(exc, requests.exceptions.RequestException | ConnectionError | TimeoutError):
        return Unreachable("The server cannot be reached.", code=type(exc).__name__, **context)
    if isinstance(exc, exerr.EWSError):
        return ServerError(
            f"The server's answer could not be used ({type(exc).__name__}).",
            code=type(exc).__name__,
            **context,
        )
    # Any other OS-level failure on the way to the server (socket, file of the CA bundle).
    return Unreachable(
        f"The server cannot be reached ({type(exc).__name__}).", code=type(exc).__name__, **context
    )


def negotiate_error(exc: negotiate.NegotiateError, **context: str | None) -> AuthError:
    """A refused Kerberos/NTLM login is bad credentials; any other Negotiate failure (no
    ticket, clock skew, unknown service principal, no KDC) is a Kerberos problem."""
    if isinstance(exc, negotiate.WrongPassword | negotiate.LoginRefused):
        return BadCredentials(str(exc), code=type(exc).__name__, **context)
    return KerberosError(str(exc), code=type(exc).__name__, **context)


def check_answer(response: requests.Response) -> None:
    """Refuse, before exchangelib parses it, an answer that is no EWS answer at all.

    Raises:
        ProxyRefused: HTTP 407.
        NotEwsAnswer: an HTML page (only the headers are read: streams stay untouched).
    """
    if response.status_code == 407:
        raise ProxyRefused("HTTP 407 Proxy Authentication Required")
    if is_web_page(response.headers.get("Content-Type")) and response.status_code not in (401, 403):
        raise NotEwsAnswer(response.status_code)


seen_response = threading.local()


def _saw_response() -> bool:
    return bool(getattr(seen_response, "response", False))


@contextlib.contextmanager
def ews_errors(
    *, mailbox: str | None = None, folder: str | None = None, item: str | None = None
) -> Iterator[None]:
    """Translate every exchangelib/requests error raised inside into a MedError."""
    seen_response.response = False
    seen_response.status = 200
    try:
        yield
    except MedError:
        raise
    except (
        exerr.EWSError,
        requests.exceptions.RequestException,
        OSError,
        negotiate.NegotiateError,
    ) as exc:
        raise translate_error(exc, mailbox=mailbox, folder=folder, item=item) from exc
    except ValueError as exc:
        # exchangelib checks values before sending (field choices, ranges, labels) with
        # ValueError; for us that is a request that cannot be made as given.
        if "is not an email address" in str(exc):
            raise InvalidInput(
                "That is not an e-mail address; give a mailbox as name@domain.",
                mailbox=mailbox,
                folder=folder,
            ) from exc
        raise InvalidInput(
            f"This value cannot be sent to Exchange: {_without_reprs(str(exc))}",
            mailbox=mailbox,
            folder=folder,
        ) from exc


_REPR = re.compile(r"\b(?:Decimal|EWSDateTime|EWSDate|datetime|date)\((['\"]?)([^()]*?)\1\)")


def _without_reprs(text: str) -> str:
    """exchangelib words its value errors with Python reprs (`Decimal('150')`); users read
    the value alone."""
    return _REPR.sub(r"\2", text)


def raise_if_error(value: Any, **context: str | None) -> None:
    if isinstance(value, Exception):
        raise translate_error(value, **context) from value
