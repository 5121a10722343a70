"""The on-call rota bot: answers "who is on call" from a rota file and, when asked, raises an
alarm to the person on call.

The rota is a TOML file, read again whenever it changes::

    alarm_list = "Rufdienst"            # alarm list of shifts that name none (name or id)

    [[shift]]
    who = "dr.meier@klinik.example"     # the person's messenger e-mail address
    name = "Dr. Meier"                  # shown in answers (default: the address)
    start = 2026-12-04T08:00:00+01:00   # with a UTC offset
    end = 2026-12-04T20:00:00+01:00
    alarm_list = "Rufdienst Meier"      # the list that reaches this person

Alarms go to alarm lists (tenant admins make them); give each shift the list that reaches its
person, usually a list with that person alone. Commands, in any conversation with the bot:
"who is on call" (or "wer hat Dienst", "/oncall"), "alarm <text>" (or "/alarm <text>"),
"help".
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messenger.client import MessengerError
from messenger.client.alarms import Alarms
from messenger.client.bot import Bot
from messenger.client.content import Text
from messenger.client.e2e import DecryptedMessage

log = logging.getLogger("messenger.bots.oncall")

WHO = re.compile(r"^\s*(/oncall\b|who\s+is\s+on\s+call|wer\s+hat\s+(heute\s+)?dienst)", re.I)
ALARM = re.compile(r"^\s*/?alarm\b[:\s]*(?P<text>.*)$", re.I | re.S)
HELP = re.compile(r"^\s*/?(help|hilfe)\s*$", re.I)
USAGE = 'Ask "who is on call" (or "wer hat Dienst"); "alarm <text>" alarms the person on call.'


class RotaError(Exception):
    """The rota file cannot be read or breaks the format (the message says where)."""


@dataclass(frozen=True)
class Shift:
    who: str
    name: str
    start: dt.datetime
    end: dt.datetime
    alarm_list: str | None


@dataclass(frozen=True)
class Rota:
    shifts: tuple[Shift, ...]

    @classmethod
    def load(cls, path: Path) -> Rota:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RotaError(f"cannot read the rota {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RotaError(f"the rota {path} is not valid TOML: {exc}") from None
        return cls.parse(doc)

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Rota:
        default_list = doc.get("alarm_list")
        if default_list is not None and not isinstance(default_list, str):
            raise RotaError("alarm_list is not text")
        raw = doc.get("shift", [])
        if not isinstance(raw, list):
            raise RotaError("'shift' must be an array of tables ([[shift]])")
        shifts = []
        for n, entry in enumerate(raw, 1):
            if not isinstance(entry, dict):
                raise RotaError(f"shift {n} is not a table")
            who, start, end = entry.get("who"), entry.get("start"), entry.get("end")
            if not isinstance(who, str) or "@" not in who:
                raise RotaError(f"shift {n}: 'who' must be an e-mail address")
            for label, value in (("start", start), ("end", end)):
                if not isinstance(value, dt.datetime) or value.tzinfo is None:
                    raise RotaError(f"shift {n}: '{label}' must be a date and time with offset")
            assert isinstance(start, dt.datetime) and isinstance(end, dt.datetime)
            if end <= start:
                raise RotaError(f"shift {n}: 'end' must lie after 'start'")
            alarm_list = entry.get("alarm_list", default_list)
            if alarm_list is not None and not isinstance(alarm_list, str):
                raise RotaError(f"shift {n}: 'alarm_list' is not text")
            name = entry.get("name", who)
            if not isinstance(name, str):
                raise RotaError(f"shift {n}: 'name' is not text")
            shifts.append(Shift(who.strip().lower(), name, start, end, alarm_list))
        return cls(tuple(sorted(shifts, key=lambda s: s.start)))

    def on_call(self, at: dt.datetime) -> list[Shift]:
        return [s for s in self.shifts if s.start <= at < s.end]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OnCallBot:
    """The rota bot's behaviour on top of a started `Bot` (stream or webhook)."""

    def __init__(
        self, bot: Bot, rota_path: Path, *, clock: Callable[[], dt.datetime] = _now
    ) -> None:
        self.bot = bot
        self.rota_path = rota_path
        self.clock = clock
        self._rota: Rota | None = None
        self._mtime: float | None = None
        self.alarms = Alarms(bot.client, bot.e2e)

    def rota(self) -> Rota:
        """The rota, read again when the file changed; a broken new file keeps the old one."""
        mtime = self.rota_path.stat().st_mtime
        if self._rota is None or mtime != self._mtime:
            try:
                self._rota = Rota.load(self.rota_path)
            except RotaError:
                if self._rota is None:
                    raise
                log.warning("rota changed but is not valid; keeping the previous one")
            self._mtime = mtime
        return self._rota

    async def on_message(self, bot: Bot, message: DecryptedMessage) -> None:
        if not isinstance(message.content, Text):
            return
        text = message.body
        answer: str | None = None
        if WHO.match(text):
            answer = self.who_answer()
        elif (m := ALARM.match(text)) is not None:
            answer = await self.raise_for(message, m.group("text").strip())
        elif HELP.match(text):
            answer = USAGE
        if answer is not None:
            await bot.e2e.send_text(message.conversation_id, answer, reply_to=message.seq)

    def who_answer(self) -> str:
        now = self.clock()
        shifts = self.rota().on_call(now)
        if not shifts:
            return "Nobody is on call now according to the rota."
        return "On call now: " + "; ".join(
            f"{s.name} ({s.who}) until {s.end.astimezone(now.tzinfo):%Y-%m-%d %H:%M %Z}"
            for s in shifts
        )

    async def raise_for(self, message: DecryptedMessage, text: str) -> str:
        if not text:
            return 'Say what the alarm is about: "alarm <text>".'
        shifts = self.rota().on_call(self.clock())
        if not shifts:
            return "Nobody is on call now according to the rota: no alarm raised."
        try:
            asker = str((await self.bot.client.user(message.sender_user_id))["display_name"])
        except MessengerError:
            asker = message.sender_user_id
        text = f"{text} (asked by {asker or message.sender_user_id} through the on-call bot)"
        raised = []
        for shift in shifts:
            try:
                lists = {str(r["list_id"]): r for r in await self.bot.client.alarm_lists()}
                by_name = {str(r["name"]).casefold(): i for i, r in lists.items()}
                ref = shift.alarm_list
                list_id = ref if ref in lists else by_name.get((ref or "").casefold())
                if list_id is None:
                    return f"No alarm list {ref!r} reaches {shift.name}: no alarm raised."
                # one alarm per asking message: a redelivered message raises nothing new
                await self.alarms.raise_alarm(
                    list_id,
                    text,
                    level="alarm",
                    txn_id=f"oncall-{message.conversation_id}-{message.seq}-{list_id}"[:128],
                )
            except MessengerError as exc:
                log.warning("alarm to %s failed: %s", shift.who, exc)
                return f"The alarm to {shift.name} failed: {exc}"
            raised.append(shift.name)
        return "Alarm raised to " + ", ".join(raised) + "."


async def run(bot: Bot, rota_path: Path) -> None:
    """Start the bot and answer on its event stream until cancelled."""
    await bot.start()
    oncall = OnCallBot(bot, rota_path)
    oncall.rota()  # a broken rota stops the start with its error
    await bot.run(oncall.on_message)
