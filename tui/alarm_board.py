"""What the alarm banner and the alarm screens show, kept apart from Textual.

The SDK (`messenger.client.alarms.Alarms`) opens alarms and keeps `active`, the alarms this
device must highlight until they are answered or closed. The board adds what the TUI needs on
top: the order in which alarms arrived (the banner shows the newest of the highest level), the
alarms this user raised or watches as a list admin (for the who-has-acknowledged view), and the
texts the banner and the screens print. Pure functions and plain data, tested without a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from messenger.client.alarms import (
    LEVELS,
    AlarmReceived,
    AlarmRejected,
    AlarmResult,
    AlarmStatus,
    Position,
)
from tui.chat_render import map_link

__all__ = [
    "AlarmBoard",
    "WatchedAlarm",
    "answer_rows",
    "banner_lines",
    "format_position",
    "parse_position",
]

#: How a level reads on screen; panic and alarm are the ones that need a hand at once.
LEVEL_LABEL = {"info": "Info", "urgent": "Urgent", "alarm": "ALARM", "panic": "PANIC"}
_NUMBER = r"[-+]?\d+(?:[.,]\d+)?"
_POSITION = re.compile(
    rf"^\s*({_NUMBER})\s*[,; ]\s*({_NUMBER})\s*(?:[,; ]\s*(?:±|\+-)?\s*({_NUMBER})\s*m?)?\s*$"
)


def parse_position(text: str) -> Position:
    """ "52.52, 13.40" or "52.52 13.40 ±8" (accuracy in metres) → Position; ValueError with a
    sentence the dialog shows."""
    match = _POSITION.match(text)
    if match is None:
        raise ValueError(
            "Write the position as latitude, longitude (and the accuracy in metres), "
            "e.g. 52.5200, 13.4050, 10."
        )
    lat, lon, accuracy = (g.replace(",", ".") if g else None for g in match.groups())
    assert lat is not None and lon is not None
    try:
        return Position(float(lat), float(lon), float(accuracy) if accuracy else None)
    except ValueError as exc:
        raise ValueError(f"{exc}.") from exc


def format_position(position: Position, *, link: bool = True) -> str:
    """Coordinates, accuracy and (with `link`) a map link any terminal can show and copy."""
    accuracy = f" ±{position.accuracy_m:.0f} m" if position.accuracy_m is not None else ""
    text = f"{position.lat:.5f}, {position.lon:.5f}{accuracy}"
    return f"{text}  {map_link(position.lat, position.lon)}" if link else text


@dataclass
class WatchedAlarm:
    """An alarm this user raised (or watches as the list's admin): its latest state and the
    answers seen so far, newest last."""

    alarm_id: str
    text: str = ""
    level: str = ""
    list_name: str = ""
    state: str = "notifying"
    answers: list[AlarmStatus] = field(default_factory=list)


@dataclass
class AlarmBoard:
    """The alarms the TUI shows: received ones until answered, raised ones until the user
    leaves. `names` maps messenger user ids to addresses as they become known."""

    received: dict[str, AlarmReceived] = field(default_factory=dict)
    watched: dict[str, WatchedAlarm] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    #: Alarm id → the profile whose account it came to or was raised from.
    profiles: dict[str, str] = field(default_factory=dict)
    #: Alarms this user was alarmed with: their answers are not "watched" alarms.
    alarmed: set[str] = field(default_factory=set)
    #: Alarms the banner has shown (reported "seen" to the sender once).
    reported_seen: set[str] = field(default_factory=set)
    rejected: int = 0

    def apply(
        self,
        results: Iterable[AlarmResult],
        active: Mapping[str, AlarmReceived],
        *,
        profile: str = "",
    ) -> bool:
        """Take the SDK's results of one stream event; `active` is `Alarms.active` after it.
        True when something new must ring (a new alarm or a new round of one)."""
        ring = False
        for result in results:
            if not isinstance(result, AlarmRejected):
                self.profiles.setdefault(result.alarm_id, profile)
            if isinstance(result, AlarmReceived):
                before = self.received.get(result.alarm_id)
                ring = ring or before is None or before.round != result.round
                self.alarmed.add(result.alarm_id)
                self.received.pop(result.alarm_id, None)  # a new round moves it to the front
                self.received[result.alarm_id] = result
            elif isinstance(result, AlarmStatus):
                watched = self.watched.get(result.alarm_id)
                mine = result.alarm_id in self.alarmed
                if watched is None and result.kind != "state" and not mine:
                    watched = self.watched[result.alarm_id] = WatchedAlarm(result.alarm_id)
                if watched is not None:
                    watched.state = result.state
                    if result.kind != "state":
                        watched.answers.append(result)
            else:
                self.rejected += 1
        for alarm_id in [a for a in self.received if a not in active]:
            del self.received[alarm_id]
        return ring

    def answered(self, alarm_id: str) -> None:
        """This user acknowledged or declined it: the banner lets it go."""
        self.received.pop(alarm_id, None)

    def raised(
        self, alarm_id: str, text: str, level: str, list_name: str, profile: str = ""
    ) -> WatchedAlarm:
        self.profiles.setdefault(alarm_id, profile)
        watched = self.watched.setdefault(alarm_id, WatchedAlarm(alarm_id))
        watched.text, watched.level, watched.list_name = text, level, list_name
        return watched

    def showing(self) -> AlarmReceived | None:
        """The alarm the banner shows: the highest level, the newest of that level."""
        if not self.received:
            return None
        ordered = list(self.received.values())
        return max(reversed(ordered), key=lambda a: _rank(a.level))

    def name(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        return self.names.get(user_id, user_id)


def _rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else -1


def banner_lines(board: AlarmBoard, keys: Mapping[str, str]) -> list[str]:
    """The banner's lines for the alarm in front (empty when none): what, from whom, where,
    and which keys answer it. `keys` maps action ids to the keys the user bound."""
    alarm = board.showing()
    if alarm is None:
        return []
    label = LEVEL_LABEL.get(alarm.level, alarm.level.upper())
    head = f"⚠ {label} from {board.name(alarm.sender_user_id)}"
    if alarm.round > 1:
        head += f" · round {alarm.round}"
    others = len(board.received) - 1
    if others > 0:
        head += f" · {others} more open"
    lines = [head, alarm.text or "(no text)"]
    extras = []
    if alarm.position is not None:  # the map link is on the alarm screen: it fits no banner
        extras.append("at " + format_position(alarm.position, link=False))
    if alarm.attachment is not None:
        extras.append(f"voice message {(alarm.attachment.duration_ms or 0) / 1000:.0f} s")
    if extras:
        lines.append(" · ".join(extras))
    lines.append(
        f"{keys.get('alarm-acknowledge', '')} acknowledge · "
        f"{keys.get('alarm-decline', '')} decline with a reason · "
        f"{keys.get('goto-alarms', '')} alarm list, map, voice"
    )
    return lines


_ANSWER_COLUMNS = (
    ("acknowledged_at", "acknowledged"),
    ("declined_at", "declined"),
    ("seen_at", "seen"),
    ("delivered_at", "delivered"),
    ("notified_at", "alarmed"),
)


def local_time(iso: str, tz: tzinfo | None, fmt: str = "%H:%M:%S") -> str:
    """A server timestamp (ISO 8601) as the user's clock shows it; "" if there is none."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime(fmt)


def answer_rows(
    status: Mapping[str, Any], names: Mapping[str, str], tz: tzinfo | None = UTC
) -> list[tuple[str, ...]]:
    """Who was alarmed and how far each got (`GET /v1/alarms/{id}`'s recipients): name, tier,
    rounds, the furthest answer and its time (in `tz`), the reason of a decline. Answers
    first."""
    rows: list[tuple[int, tuple[str, ...]]] = []
    for recipient in status.get("recipients", []):
        answer, when, rank = "not alarmed yet", "", len(_ANSWER_COLUMNS)
        for index, (column, label) in enumerate(_ANSWER_COLUMNS):
            if recipient.get(column):
                answer, when, rank = label, local_time(str(recipient[column]), tz), index
                break
        user_id = str(recipient.get("user_id", ""))
        rows.append(
            (
                rank,
                (
                    names.get(user_id, user_id),
                    str(recipient.get("tier", "")),
                    str(recipient.get("rounds", "")),
                    answer,
                    when,
                    str(recipient.get("decline_reason") or ""),
                ),
            )
        )
    return [row for _, row in sorted(rows, key=lambda r: (r[0], r[1][0]))]
