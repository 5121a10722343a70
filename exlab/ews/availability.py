"""GetUserAvailability: free/busy of several people, from their default calendars.

What a caller sees follows the calendar's rights, as in Exchange: free/busy times only
(FreeBusyTimeOnly), times with subject and location (FreeBusyTimeAndSubjectAndLocation), or full
details (Reviewer and up). Private appointments show as busy time without details unless the
caller may view private items. Times are in the time zone the request names (t:TimeZone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from exlab.core.access import Rights
from exlab.core.freebusy import MAX_WINDOW, RANK, Busy, busy_times, granted_view, merged
from exlab.core.scheduling import working_hours
from exlab.core.targets import item_ews_id
from exlab.core.timezones import Zone, zone_by_id
from exlab.ews.ids import rights_on
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    bool_text,
    fill_error,
    m,
    operation,
    sub,
    t,
    text_of,
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# -- the request's time zone ----------------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    """A yearly switch (SerializableTimeZoneTime): `order`-th (5 = last) weekday of month."""

    bias: int
    at: time
    order: int
    month: int
    weekday: int

    def moment(self, year: int) -> datetime:
        first = date(year, self.month, 1)
        offset = (self.weekday - first.weekday()) % 7
        day = first + timedelta(days=offset + 7 * (self.order - 1))
        while day.month != self.month:
            day -= timedelta(days=7)
        return datetime.combine(day, self.at)


class RequestZone(tzinfo):
    """The Windows-style zone of a request: a bias plus optional daylight rules."""

    def __init__(self, bias: int, standard: Switch | None, daylight: Switch | None) -> None:
        self.bias = bias
        self.standard = standard
        self.daylight = daylight

    def _is_dst(self, local: datetime) -> bool:
        if self.standard is None or self.daylight is None:
            return False
        naive = local.replace(tzinfo=None)
        start = self.daylight.moment(naive.year)
        end = self.standard.moment(naive.year)
        if start < end:
            return start <= naive < end
        return not end <= naive < start

    def _offset(self, dst: bool) -> timedelta:
        extra = 0
        if dst and self.daylight is not None:
            extra = self.daylight.bias
        elif self.standard is not None:
            extra = self.standard.bias
        return -timedelta(minutes=self.bias + extra)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self._offset(dt is not None and self._is_dst(dt))

    def dst(self, dt: datetime | None) -> timedelta:
        return self.utcoffset(dt) - self._offset(False)

    def tzname(self, dt: datetime | None) -> str:
        return "request"

    def fromutc(self, dt: datetime) -> datetime:
        local = dt + self._offset(False)
        if self._is_dst(local):
            local = dt + self._offset(True)
        return local


def _switch(el: Element | None) -> Switch | None:
    if el is None:
        return None
    month = int(text_of(el.find(t("Month")), "0"))
    if month == 0:
        return None
    hours, minutes, *rest = (int(p) for p in text_of(el.find(t("Time")), "00:00:00").split(":"))
    return Switch(
        bias=int(text_of(el.find(t("Bias")), "0")),
        at=time(hours, minutes, rest[0] if rest else 0),
        order=int(text_of(el.find(t("DayOrder")), "1")),
        month=month,
        weekday=WEEKDAYS.index(text_of(el.find(t("DayOfWeek")), "Sunday")),
    )


def parse_zone(el: Element | None) -> tzinfo:
    if el is None:
        return UTC
    try:
        return RequestZone(
            int(text_of(el.find(t("Bias")), "0")),
            _switch(el.find(t("StandardTime"))),
            _switch(el.find(t("DaylightTime"))),
        )
    except ValueError:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: bad TimeZone."
        ) from None


_DURATION = re.compile(r"(-)?PT(?:(\d+)H)?(?:(\d+)M)?")


def _minutes(duration: str) -> int:
    found = _DURATION.fullmatch(duration)
    if found is None:
        return 0
    value = int(found.group(2) or 0) * 60 + int(found.group(3) or 0)
    return -value if found.group(1) else value


def _utc() -> Zone:
    found = zone_by_id("UTC")
    assert found is not None
    return found


def serializable_zone(parent: Element, zone: Zone) -> None:
    """A Windows zone in the old SerializableTimeZone form (WorkingHours)."""
    el = sub(parent, t("TimeZone"))
    standard = _minutes(zone.standard_bias)
    sub(el, t("Bias"), str(standard))
    rules = {rule.to: rule for rule in zone.rules}
    for tag, period, bias in (
        ("StandardTime", "Std", 0),
        ("DaylightTime", "Dlt/1", _minutes(zone.daylight_bias or "PT0H") - standard),
    ):
        part = sub(el, t(tag))
        rule = rules.get(period)
        sub(part, t("Bias"), str(bias if rule else 0))
        hours = _minutes(rule.time_offset) // 60 if rule else 0
        sub(part, t("Time"), f"{hours:02d}:00:00")
        sub(
            part,
            t("DayOrder"),
            str(5 if rule and rule.occurrence == -1 else (rule.occurrence if rule else 0)),
        )
        sub(part, t("Month"), str(rule.month if rule else 0))
        sub(part, t("DayOfWeek"), rule.weekday if rule else "Sunday")


# -- free/busy ------------------------------------------------------------------------------------


@operation("GetUserAvailabilityRequest", min_version="Exchange2007_SP1")
def get_user_availability(ctx: EwsContext, request: Element) -> Element:
    """One FreeBusyResponse per mailbox; a problem with the window answers each of them."""
    zone = parse_zone(request.find(t("TimeZone")))
    root = Element(m("GetUserAvailabilityResponse"))
    array = sub(root, m("FreeBusyResponseArray"))
    problem: EwsError | None = None
    try:
        start, end, interval, requested = _options(request, zone)
    except EwsError as err:
        problem = err
    mailboxes = request.find(m("MailboxDataArray"))
    for data in mailboxes.findall(t("MailboxData")) if mailboxes is not None else []:
        address = text_of(data.find(f"{t('Email')}/{t('Address')}")).lower()
        answer = sub(array, m("FreeBusyResponse"))
        message = sub(answer, m("ResponseMessage"), ResponseClass="Success")
        try:
            if problem is not None:
                raise problem
            view = _free_busy_view(ctx, address, start, end, interval, requested, zone)
        except EwsError as err:
            message.set("ResponseClass", "Error")
            fill_error(message, err)
            continue
        sub(message, m("ResponseCode"), "NoError")
        answer.append(view)
    return root


def _options(request: Element, zone: tzinfo) -> tuple[datetime, datetime, timedelta, str]:
    """(start, end in UTC, merge interval, requested view) of FreeBusyViewOptions."""
    options = request.find(t("FreeBusyViewOptions"))
    if options is None:
        raise EwsError("ErrorInvalidRequest", "Only free/busy requests are supported.")
    window = options.find(t("TimeWindow"))
    try:
        start = _local(text_of(window.find(t("StartTime")) if window is not None else None), zone)
        end = _local(text_of(window.find(t("EndTime")) if window is not None else None), zone)
        minutes = int(text_of(options.find(t("MergedFreeBusyIntervalInMinutes")), "30"))
    except ValueError:
        raise SoapFault(
            "ErrorSchemaValidation", "The request failed schema validation: TimeWindow."
        ) from None
    interval = timedelta(minutes=minutes)
    if end <= start:
        raise EwsError("ErrorInvalidTimeInterval", "EndTime must be after StartTime.")
    if end - start > MAX_WINDOW:
        raise EwsError("ErrorTimeIntervalTooBig", "The time window is longer than 62 days.")
    if interval < timedelta(minutes=5) or interval > timedelta(days=1):
        raise EwsError("ErrorInvalidMergedFreeBusyInterval", "The merged interval is out of range.")
    return start, end, interval, text_of(options.find(t("RequestedView")), "Detailed")


def _local(text: str, zone: tzinfo) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _free_busy_view(
    ctx: EwsContext,
    address: str,
    start: datetime,
    end: datetime,
    interval: timedelta,
    requested: str,
    zone: tzinfo,
) -> Element:
    store = ctx.lab.store
    mailbox = store.mailbox(address) if address else None
    calendar = store.distinguished_folder(address, "calendar") if mailbox else None
    if mailbox is None or calendar is None:
        raise EwsError("ErrorMailRecipientNotFound", f"No mailbox with SMTP address {address}.")
    rights = rights_on(ctx, calendar)
    kind = granted_view(requested, rights)
    if kind is None:
        raise EwsError("ErrorNoFreeBusyAccess", "No free/busy access to this calendar.")
    busy = busy_times(ctx, calendar.id, start, end)
    view = Element(m("FreeBusyView"))
    sub(view, t("FreeBusyViewType"), kind)
    if kind.endswith("Merged") or kind == "MergedOnly":
        sub(view, t("MergedFreeBusy"), merged(busy, start, end, interval))
    if kind != "MergedOnly":
        events = sub(view, t("CalendarEventArray"))
        for entry in busy:
            _event(ctx, events, entry, kind, rights, zone)
    work = working_hours(mailbox)
    hours = sub(view, t("WorkingHours"))
    serializable_zone(hours, zone_by_id(work.time_zone) or _utc())
    periods = sub(hours, t("WorkingPeriodArray"))
    period = sub(periods, t("WorkingPeriod"))
    sub(period, t("DayOfWeek"), " ".join(work.days))
    sub(period, t("StartTimeInMinutes"), str(work.start_minutes))
    sub(period, t("EndTimeInMinutes"), str(work.end_minutes))
    return view


def _event(
    ctx: EwsContext, parent: Element, entry: Busy, kind: str, rights: Rights, zone: tzinfo
) -> None:
    event = sub(parent, t("CalendarEvent"))
    sub(event, t("StartTime"), entry.start.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"))
    sub(event, t("EndTime"), entry.end.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"))
    status = entry.status
    if status == "WorkingElsewhere" and not ctx.at_least("Exchange2013"):
        status = "Free"
    sub(event, t("BusyType"), status if status in RANK else "Busy")
    if not kind.startswith("Detailed"):
        return
    props = entry.item.props
    private = entry.item.is_private
    details = sub(event, t("CalendarEventDetails"))
    show = not private or rights.view_private
    if show and rights.read == "full":
        sub(details, t("ID"), item_ews_id(entry.item))
    if show:
        if props.get("item:Subject"):
            sub(details, t("Subject"), str(props["item:Subject"]))
        if props.get("calendar:Location"):
            sub(details, t("Location"), str(props["calendar:Location"]))
    sub(details, t("IsMeeting"), bool_text(bool(props.get("calendar:IsMeeting"))))
    sub(details, t("IsRecurring"), bool_text(entry.recurring))
    sub(details, t("IsException"), bool_text(entry.exception))
    sub(details, t("IsReminderSet"), bool_text(bool(props.get("item:ReminderIsSet"))))
    sub(details, t("IsPrivate"), bool_text(private))
