"""Time zones in EWS's shape: `t:TimeZoneDefinition` as Exchange writes it."""

from __future__ import annotations

from exlab.core.timezones import Zone
from exlab.ews.soap import Element, sub, t


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
