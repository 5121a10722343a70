"""Windows time zones as Exchange knows them, and their IANA twins: the lab's one zone table.

Exchange names zones by their Windows ids ("W. Europe Standard Time"); Graph clients send
Windows or IANA names; the store keeps UTC and reads local times through `zoneinfo`. Every
face and the core look zones up here. The periods and yearly rules Exchange writes in a
TimeZoneDefinition are derived from the IANA rules of a reference year, so the table holds
only what tzdata does not know: the Windows id, its display name and its IANA zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REFERENCE_YEAR = 2025
"""The year whose IANA rules give the yearly transitions (fixed, so answers are stable)."""

# (Windows id, display name, IANA zone): Windows' own list, in its order (by offset).
WINDOWS_ZONES: tuple[tuple[str, str, str], ...] = (
    ("Dateline Standard Time", "(UTC-12:00) International Date Line West", "Etc/GMT+12"),
    ("UTC-11", "(UTC-11:00) Coordinated Universal Time-11", "Etc/GMT+11"),
    ("Aleutian Standard Time", "(UTC-10:00) Aleutian Islands", "America/Adak"),
    ("Hawaiian Standard Time", "(UTC-10:00) Hawaii", "Pacific/Honolulu"),
    ("Marquesas Standard Time", "(UTC-09:30) Marquesas Islands", "Pacific/Marquesas"),
    ("Alaskan Standard Time", "(UTC-09:00) Alaska", "America/Anchorage"),
    ("UTC-09", "(UTC-09:00) Coordinated Universal Time-09", "Etc/GMT+9"),
    ("Pacific Standard Time (Mexico)", "(UTC-08:00) Baja California", "America/Tijuana"),
    ("UTC-08", "(UTC-08:00) Coordinated Universal Time-08", "Etc/GMT+8"),
    ("Pacific Standard Time", "(UTC-08:00) Pacific Time (US & Canada)", "America/Los_Angeles"),
    ("US Mountain Standard Time", "(UTC-07:00) Arizona", "America/Phoenix"),
    (
        "Mountain Standard Time (Mexico)",
        "(UTC-07:00) La Paz, Mazatlan",
        "America/Mazatlan",
    ),
    ("Mountain Standard Time", "(UTC-07:00) Mountain Time (US & Canada)", "America/Denver"),
    ("Yukon Standard Time", "(UTC-07:00) Yukon", "America/Whitehorse"),
    ("Central America Standard Time", "(UTC-06:00) Central America", "America/Guatemala"),
    ("Central Standard Time", "(UTC-06:00) Central Time (US & Canada)", "America/Chicago"),
    ("Easter Island Standard Time", "(UTC-06:00) Easter Island", "Pacific/Easter"),
    (
        "Central Standard Time (Mexico)",
        "(UTC-06:00) Guadalajara, Mexico City, Monterrey",
        "America/Mexico_City",
    ),
    ("Canada Central Standard Time", "(UTC-06:00) Saskatchewan", "America/Regina"),
    ("SA Pacific Standard Time", "(UTC-05:00) Bogota, Lima, Quito, Rio Branco", "America/Bogota"),
    ("Eastern Standard Time (Mexico)", "(UTC-05:00) Chetumal", "America/Cancun"),
    ("Eastern Standard Time", "(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
    ("Haiti Standard Time", "(UTC-05:00) Haiti", "America/Port-au-Prince"),
    ("Cuba Standard Time", "(UTC-05:00) Havana", "America/Havana"),
    ("US Eastern Standard Time", "(UTC-05:00) Indiana (East)", "America/Indiana/Indianapolis"),
    ("Turks And Caicos Standard Time", "(UTC-05:00) Turks and Caicos", "America/Grand_Turk"),
    ("Paraguay Standard Time", "(UTC-04:00) Asuncion", "America/Asuncion"),
    ("Atlantic Standard Time", "(UTC-04:00) Atlantic Time (Canada)", "America/Halifax"),
    ("Venezuela Standard Time", "(UTC-04:00) Caracas", "America/Caracas"),
    ("Central Brazilian Standard Time", "(UTC-04:00) Cuiaba", "America/Cuiaba"),
    (
        "SA Western Standard Time",
        "(UTC-04:00) Georgetown, La Paz, Manaus, San Juan",
        "America/La_Paz",
    ),
    ("Pacific SA Standard Time", "(UTC-04:00) Santiago", "America/Santiago"),
    ("Newfoundland Standard Time", "(UTC-03:30) Newfoundland", "America/St_Johns"),
    ("Tocantins Standard Time", "(UTC-03:00) Araguaina", "America/Araguaina"),
    ("E. South America Standard Time", "(UTC-03:00) Brasilia", "America/Sao_Paulo"),
    ("SA Eastern Standard Time", "(UTC-03:00) Cayenne, Fortaleza", "America/Cayenne"),
    ("Argentina Standard Time", "(UTC-03:00) City of Buenos Aires", "America/Buenos_Aires"),
    ("Greenland Standard Time", "(UTC-03:00) Greenland", "America/Godthab"),
    ("Montevideo Standard Time", "(UTC-03:00) Montevideo", "America/Montevideo"),
    ("Magallanes Standard Time", "(UTC-03:00) Punta Arenas", "America/Punta_Arenas"),
    ("Saint Pierre Standard Time", "(UTC-03:00) Saint Pierre and Miquelon", "America/Miquelon"),
    ("Bahia Standard Time", "(UTC-03:00) Salvador", "America/Bahia"),
    ("UTC-02", "(UTC-02:00) Coordinated Universal Time-02", "Etc/GMT+2"),
    ("Azores Standard Time", "(UTC-01:00) Azores", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "(UTC-01:00) Cabo Verde Is.", "Atlantic/Cape_Verde"),
    ("UTC", "(UTC) Coordinated Universal Time", "Etc/UTC"),
    ("GMT Standard Time", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "Europe/London"),
    ("Greenwich Standard Time", "(UTC+00:00) Monrovia, Reykjavik", "Atlantic/Reykjavik"),
    ("Sao Tome Standard Time", "(UTC+00:00) Sao Tome", "Africa/Sao_Tome"),
    ("Morocco Standard Time", "(UTC+01:00) Casablanca", "Africa/Casablanca"),
    (
        "W. Europe Standard Time",
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        "Europe/Berlin",
    ),
    (
        "Central Europe Standard Time",
        "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague",
        "Europe/Budapest",
    ),
    ("Romance Standard Time", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris", "Europe/Paris"),
    (
        "Central European Standard Time",
        "(UTC+01:00) Sarajevo, Skopje, Warsaw, Zagreb",
        "Europe/Warsaw",
    ),
    ("W. Central Africa Standard Time", "(UTC+01:00) West Central Africa", "Africa/Lagos"),
    ("Jordan Standard Time", "(UTC+03:00) Amman", "Asia/Amman"),
    ("GTB Standard Time", "(UTC+02:00) Athens, Bucharest", "Europe/Bucharest"),
    ("Middle East Standard Time", "(UTC+02:00) Beirut", "Asia/Beirut"),
    ("Egypt Standard Time", "(UTC+02:00) Cairo", "Africa/Cairo"),
    ("E. Europe Standard Time", "(UTC+02:00) Chisinau", "Europe/Chisinau"),
    ("Syria Standard Time", "(UTC+03:00) Damascus", "Asia/Damascus"),
    ("West Bank Standard Time", "(UTC+02:00) Gaza, Hebron", "Asia/Hebron"),
    ("South Africa Standard Time", "(UTC+02:00) Harare, Pretoria", "Africa/Johannesburg"),
    (
        "FLE Standard Time",
        "(UTC+02:00) Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius",
        "Europe/Kiev",
    ),
    ("Israel Standard Time", "(UTC+02:00) Jerusalem", "Asia/Jerusalem"),
    ("South Sudan Standard Time", "(UTC+02:00) Juba", "Africa/Juba"),
    ("Kaliningrad Standard Time", "(UTC+02:00) Kaliningrad", "Europe/Kaliningrad"),
    ("Sudan Standard Time", "(UTC+02:00) Khartoum", "Africa/Khartoum"),
    ("Libya Standard Time", "(UTC+02:00) Tripoli", "Africa/Tripoli"),
    ("Namibia Standard Time", "(UTC+02:00) Windhoek", "Africa/Windhoek"),
    ("Arabic Standard Time", "(UTC+03:00) Baghdad", "Asia/Baghdad"),
    ("Turkey Standard Time", "(UTC+03:00) Istanbul", "Europe/Istanbul"),
    ("Arab Standard Time", "(UTC+03:00) Kuwait, Riyadh", "Asia/Riyadh"),
    ("Belarus Standard Time", "(UTC+03:00) Minsk", "Europe/Minsk"),
    ("Russian Standard Time", "(UTC+03:00) Moscow, St. Petersburg", "Europe/Moscow"),
    ("E. Africa Standard Time", "(UTC+03:00) Nairobi", "Africa/Nairobi"),
    ("Volgograd Standard Time", "(UTC+03:00) Volgograd", "Europe/Volgograd"),
    ("Iran Standard Time", "(UTC+03:30) Tehran", "Asia/Tehran"),
    ("Arabian Standard Time", "(UTC+04:00) Abu Dhabi, Muscat", "Asia/Dubai"),
    ("Astrakhan Standard Time", "(UTC+04:00) Astrakhan, Ulyanovsk", "Europe/Astrakhan"),
    ("Azerbaijan Standard Time", "(UTC+04:00) Baku", "Asia/Baku"),
    ("Russia Time Zone 3", "(UTC+04:00) Izhevsk, Samara", "Europe/Samara"),
    ("Mauritius Standard Time", "(UTC+04:00) Port Louis", "Indian/Mauritius"),
    ("Saratov Standard Time", "(UTC+04:00) Saratov", "Europe/Saratov"),
    ("Georgian Standard Time", "(UTC+04:00) Tbilisi", "Asia/Tbilisi"),
    ("Caucasus Standard Time", "(UTC+04:00) Yerevan", "Asia/Yerevan"),
    ("Afghanistan Standard Time", "(UTC+04:30) Kabul", "Asia/Kabul"),
    ("West Asia Standard Time", "(UTC+05:00) Ashgabat, Tashkent", "Asia/Tashkent"),
    ("Qyzylorda Standard Time", "(UTC+05:00) Astana", "Asia/Qyzylorda"),
    ("Ekaterinburg Standard Time", "(UTC+05:00) Ekaterinburg", "Asia/Yekaterinburg"),
    ("Pakistan Standard Time", "(UTC+05:00) Islamabad, Karachi", "Asia/Karachi"),
    (
        "India Standard Time",
        "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi",
        "Asia/Calcutta",
    ),
    ("Sri Lanka Standard Time", "(UTC+05:30) Sri Jayawardenepura", "Asia/Colombo"),
    ("Nepal Standard Time", "(UTC+05:45) Kathmandu", "Asia/Katmandu"),
    ("Central Asia Standard Time", "(UTC+06:00) Bishkek", "Asia/Bishkek"),
    ("Bangladesh Standard Time", "(UTC+06:00) Dhaka", "Asia/Dhaka"),
    ("Omsk Standard Time", "(UTC+06:00) Omsk", "Asia/Omsk"),
    ("Myanmar Standard Time", "(UTC+06:30) Yangon (Rangoon)", "Asia/Rangoon"),
    ("SE Asia Standard Time", "(UTC+07:00) Bangkok, Hanoi, Jakarta", "Asia/Bangkok"),
    ("Altai Standard Time", "(UTC+07:00) Barnaul, Gorno-Altaysk", "Asia/Barnaul"),
    ("W. Mongolia Standard Time", "(UTC+07:00) Hovd", "Asia/Hovd"),
    ("North Asia Standard Time", "(UTC+07:00) Krasnoyarsk", "Asia/Krasnoyarsk"),
    ("N. Central Asia Standard Time", "(UTC+07:00) Novosibirsk", "Asia/Novosibirsk"),
    ("Tomsk Standard Time", "(UTC+07:00) Tomsk", "Asia/Tomsk"),
    (
        "China Standard Time",
        "(UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi",
        "Asia/Shanghai",
    ),
    ("North Asia East Standard Time", "(UTC+08:00) Irkutsk", "Asia/Irkutsk"),
    ("Singapore Standard Time", "(UTC+08:00) Kuala Lumpur, Singapore", "Asia/Singapore"),
    ("W. Australia Standard Time", "(UTC+08:00) Perth", "Australia/Perth"),
    ("Taipei Standard Time", "(UTC+08:00) Taipei", "Asia/Taipei"),
    ("Ulaanbaatar Standard Time", "(UTC+08:00) Ulaanbaatar", "Asia/Ulaanbaatar"),
    ("Aus Central W. Standard Time", "(UTC+08:45) Eucla", "Australia/Eucla"),
    ("Transbaikal Standard Time", "(UTC+09:00) Chita", "Asia/Chita"),
    ("Tokyo Standard Time", "(UTC+09:00) Osaka, Sapporo, Tokyo", "Asia/Tokyo"),
    ("North Korea Standard Time", "(UTC+09:00) Pyongyang", "Asia/Pyongyang"),
    ("Korea Standard Time", "(UTC+09:00) Seoul", "Asia/Seoul"),
    ("Yakutsk Standard Time", "(UTC+09:00) Yakutsk", "Asia/Yakutsk"),
    ("Cen. Australia Standard Time", "(UTC+09:30) Adelaide", "Australia/Adelaide"),
    ("AUS Central Standard Time", "(UTC+09:30) Darwin", "Australia/Darwin"),
    ("E. Australia Standard Time", "(UTC+10:00) Brisbane", "Australia/Brisbane"),
    (
        "AUS Eastern Standard Time",
        "(UTC+10:00) Canberra, Melbourne, Sydney",
        "Australia/Sydney",
    ),
    ("West Pacific Standard Time", "(UTC+10:00) Guam, Port Moresby", "Pacific/Port_Moresby"),
    ("Tasmania Standard Time", "(UTC+10:00) Hobart", "Australia/Hobart"),
    ("Vladivostok Standard Time", "(UTC+10:00) Vladivostok", "Asia/Vladivostok"),
    ("Lord Howe Standard Time", "(UTC+10:30) Lord Howe Island", "Australia/Lord_Howe"),
    ("Bougainville Standard Time", "(UTC+11:00) Bougainville Island", "Pacific/Bougainville"),
    ("Russia Time Zone 10", "(UTC+11:00) Chokurdakh", "Asia/Srednekolymsk"),
    ("Magadan Standard Time", "(UTC+11:00) Magadan", "Asia/Magadan"),
    ("Norfolk Standard Time", "(UTC+11:00) Norfolk Island", "Pacific/Norfolk"),
    ("Sakhalin Standard Time", "(UTC+11:00) Sakhalin", "Asia/Sakhalin"),
    (
        "Central Pacific Standard Time",
        "(UTC+11:00) Solomon Is., New Caledonia",
        "Pacific/Guadalcanal",
    ),
    (
        "Russia Time Zone 11",
        "(UTC+12:00) Anadyr, Petropavlovsk-Kamchatsky",
        "Asia/Kamchatka",
    ),
    ("New Zealand Standard Time", "(UTC+12:00) Auckland, Wellington", "Pacific/Auckland"),
    ("UTC+12", "(UTC+12:00) Coordinated Universal Time+12", "Etc/GMT-12"),
    ("Fiji Standard Time", "(UTC+12:00) Fiji", "Pacific/Fiji"),
    ("Chatham Islands Standard Time", "(UTC+12:45) Chatham Islands", "Pacific/Chatham"),
    ("UTC+13", "(UTC+13:00) Coordinated Universal Time+13", "Etc/GMT-13"),
    ("Tonga Standard Time", "(UTC+13:00) Nuku'alofa", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "(UTC+13:00) Samoa", "Pacific/Apia"),
    ("Line Islands Standard Time", "(UTC+14:00) Kiritimati Island", "Pacific/Kiritimati"),
)

# IANA names a client may send that are not the canonical twin above.
_IANA_ALIASES = {
    "UTC": "UTC",
    "Etc/GMT": "UTC",
    "Europe/Vienna": "W. Europe Standard Time",
    "Europe/Amsterdam": "W. Europe Standard Time",
    "Europe/Rome": "W. Europe Standard Time",
    "Europe/Zurich": "W. Europe Standard Time",
    "Europe/Stockholm": "W. Europe Standard Time",
    "Europe/Prague": "Central Europe Standard Time",
    "Europe/Madrid": "Romance Standard Time",
    "Europe/Brussels": "Romance Standard Time",
    "Europe/Copenhagen": "Romance Standard Time",
    "Europe/Kyiv": "FLE Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "America/Indianapolis": "US Eastern Standard Time",
}


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
    """A Windows zone: its id, display name, IANA twin and the biases and rules Exchange writes
    (biases as xs:duration, UTC minus local time)."""

    id: str
    name: str
    iana: str
    standard_bias: str
    daylight_bias: str | None = None
    rules: tuple[Rule, ...] = ()

    @property
    def info(self) -> ZoneInfo:
        return ZoneInfo(self.iana)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def duration_text(delta: timedelta) -> str:
    """An xs:duration such as -PT1H or PT5H30M (zero is PT0H)."""
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}PT{hours}H{rest}M" if rest else f"{sign}PT{hours}H"


def _transitions(info: ZoneInfo, year: int) -> list[datetime]:
    """UTC instants in `year` at which the zone's offset changes."""
    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    offset = moment.astimezone(info).utcoffset()
    while moment < end:
        following = moment + step
        if following.astimezone(info).utcoffset() != offset:
            low, high = moment, following
            while high - low > timedelta(minutes=15):
                middle = low + (high - low) / 2
                if middle.astimezone(info).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
            offset = following.astimezone(info).utcoffset()
        moment = following
    return found


def _rule(to: str, instant: datetime, offset_before: timedelta) -> Rule:
    local = (instant + offset_before).replace(tzinfo=None)
    last = (local + timedelta(days=7)).month != local.month
    occurrence = -1 if last else (local.day - 1) // 7 + 1
    since_midnight = local - local.replace(hour=0, minute=0, second=0, microsecond=0)
    return Rule(
        to, local.month, _WEEKDAYS[local.weekday()], occurrence, duration_text(since_midnight)
    )


def _build(windows_id: str, name: str, iana: str) -> Zone:
    info = ZoneInfo(iana)
    changes = _transitions(info, REFERENCE_YEAR)
    winter = datetime(REFERENCE_YEAR, 1, 15, tzinfo=UTC).astimezone(info).utcoffset()
    summer = datetime(REFERENCE_YEAR, 7, 15, tzinfo=UTC).astimezone(info).utcoffset()
    assert winter is not None and summer is not None
    if len(changes) != 2 or winter == summer:
        return Zone(windows_id, name, iana, duration_text(-winter))
    standard, daylight = min(winter, summer), max(winter, summer)
    rules = []
    for instant in changes:
        before = (instant - timedelta(minutes=1)).astimezone(info).utcoffset()
        after = instant.astimezone(info).utcoffset()
        assert before is not None
        rules.append(_rule("Dlt/1" if after == daylight else "Std", instant, before))
    rules.sort(key=lambda r: r.to != "Dlt/1")
    return Zone(
        windows_id,
        name,
        iana,
        duration_text(-standard),
        duration_text(-daylight),
        tuple(rules),
    )


@cache
def zones() -> tuple[Zone, ...]:
    """Every Windows zone, in Windows' order (GetServerTimeZones answers them all)."""
    return tuple(_build(*row) for row in WINDOWS_ZONES)


@cache
def _by_id() -> dict[str, Zone]:
    return {zone.id: zone for zone in zones()}


def zone_by_id(windows_id: str) -> Zone | None:
    """The Windows zone of that id (exact, as Exchange matches them), or None."""
    return _by_id().get(windows_id)


def windows_id_of(name: str) -> str | None:
    """The Windows id for a Windows id or an IANA name, or None when neither is known."""
    if name in _by_id():
        return name
    if name in _IANA_ALIASES:
        return _IANA_ALIASES[name]
    for windows_id, _, iana in WINDOWS_ZONES:
        if iana == name:
            return windows_id
    return None


def zone_info(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The zone for a Windows id or an IANA name; `default` (an IANA name) when unknown."""
    if name:
        found = zone_by_id(name)
        if found is not None:
            return found.info
        if name == "Coordinated Universal Time":
            return ZoneInfo("UTC")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def known(name: str) -> bool:
    """Whether `name` is a Windows id or an IANA name the lab can read times in."""
    if zone_by_id(name) is not None or name == "Coordinated Universal Time":
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
