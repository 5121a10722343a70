"""Windows time zones as Exchange describes them (GetServerTimeZones, OWA options).

A small table of the zones the organisation and its partners use, written the way Exchange
writes TimeZoneDefinition: periods with biases, one transitions group with the yearly rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from exlab.ews.soap import Element, sub, t


@dataclass(frozen=True)
class Rule:
    """A yearly switch: to `to` on the `occurrence`-th (-1 = last) `weekday` of `month`."""

    to: str
    month: int
    weekday: str
    occurrence: int
    time_offset: str


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    standard_bias: str
    daylight_bias: str | None = None
    rules: tuple[Rule, ...] = ()


_EU = (
    Rule("Dlt/1", 3, "Sunday", -1, "PT2H"),
    Rule("Std", 10, "Sunday", -1, "PT3H"),
)
_US = (
    Rule("Dlt/1", 3, "Sunday", 2, "PT2H"),
    Rule("Std", 11, "Sunday", 1, "PT2H"),
)
_UK = (
    Rule("Dlt/1", 3, "Sunday", -1, "PT1H"),
    Rule("Std", 10, "Sunday", -1, "PT2H"),
)

ZONES: tuple[Zone, ...] = (
    Zone("UTC", "(UTC) Coordinated Universal Time", "PT0H"),
    Zone(
        "GMT Standard Time", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "PT0H", "-PT1H", _UK
    ),
    Zone(
        "W. Europe Standard Time",
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        "-PT1H",
        "-PT2H",
        _EU,
    ),
    Zone(
        "Central Europe Standard Time",
        "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague",
        "-PT1H",
        "-PT2H",
        _EU,
    ),
    Zone(
        "Romance Standard Time",
        "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
        "-PT1H",
        "-PT2H",
        _EU,
    ),
    Zone("GTB Standard Time", "(UTC+02:00) Athens, Bucharest", "-PT2H", "-PT3H", _EU),
    Zone("Eastern Standard Time", "(UTC-05:00) Eastern Time (US & Canada)", "PT5H", "PT4H", _US),
    Zone("Pacific Standard Time", "(UTC-08:00) Pacific Time (US & Canada)", "PT8H", "PT7H", _US),
)
BY_ID = {zone.id: zone for zone in ZONES}


def zone_element(parent: Element, zone: Zone, *, full: bool = True) -> Element:
    """Append `t:TimeZoneDefinition` for a zone (only Id and Name unless `full`)."""
    el = sub(parent, t("TimeZoneDefinition"), Id=zone.id, Name=zone.name)
    if not full:
        return el
    periods = sub(el, t("Periods"))
    if zone.daylight_bias is not None:
        sub(periods, t("Period"), Bias=zone.daylight_bias, Name="Daylight", Id="Dlt/1")
    sub(periods, t("Period"), Bias=zone.standard_bias, Name="Standard", Id="Std")
    groups = sub(el, t("TransitionsGroups"))
    group = sub(groups, t("TransitionsGroup"), Id="0")
    if zone.rules:
        for rule in zone.rules:
            transition = sub(group, t("RecurringDayTransition"))
            sub(transition, t("To"), rule.to, Kind="Period")
            sub(transition, t("TimeOffset"), rule.time_offset)
            sub(transition, t("Month"), str(rule.month))
            sub(transition, t("DayOfWeek"), rule.weekday)
            sub(transition, t("Occurrence"), str(rule.occurrence))
    else:
        transition = sub(group, t("Transition"))
        sub(transition, t("To"), "Std", Kind="Period")
    transitions = sub(el, t("Transitions"))
    first = sub(transitions, t("Transition"))
    sub(first, t("To"), "0", Kind="Group")
    return el
