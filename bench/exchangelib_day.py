"""The assistant's day written with plain exchangelib, as a competent exchangelib user would.

`bench.bench_med` runs this module in a child process (so that none of med's process-wide
exchangelib settings apply, and neither client shares a process with the lab) and drives it
over stdin/stdout: one line `TASK JSON-ARGS` per task, answered by one line `done SECONDS`
(or `error TEXT`) after a first line `ready`. The lab counts the requests.

Delegate access throughout (`Account(..., access_type=DELEGATE)`); the server version is
given, as med's profile gives it, so exchangelib does not ask for it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from exchangelib import (
    BASIC,
    DELEGATE,
    Account,
    Body,
    Build,
    Configuration,
    Credentials,
    ExtendedProperty,
    FileAttachment,
    HTMLBody,
    Mailbox,
    Message,
    Version,
)
from exchangelib.items import AcceptItem, MeetingRequest
from exchangelib.properties import ReferenceItemId

ASSISTENZ = "assistenz@musterstadt.example"
CHEF = "chef@musterstadt.example"
TEAMKALENDER = "teamkalender@musterstadt.example"


class FlagStatus(ExtendedProperty):  # type: ignore[misc]
    """PidTagFlagStatus: exchangelib has no follow-up flag field; 2 is "flagged"."""

    property_tag = 0x1090
    property_type = "Integer"


def _start(event: Any) -> datetime:
    """When an event starts; all-day events start at midnight (exchangelib gives a date)."""
    start = event.start
    if isinstance(start, datetime):
        return start
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


class Day:
    """The five tasks; accounts and folders found once are kept, as a script would."""

    def __init__(self, url: str, password: str) -> None:
        Message.register("flag_status", FlagStatus)
        self.config = Configuration(
            service_endpoint=url,
            credentials=Credentials(ASSISTENZ, password),
            auth_type=BASIC,
            version=Version(build=Build(15, 1)),
        )

    # Made when first used, as med makes its accounts: both sides' times include it.
    @cached_property
    def chef(self) -> Account:
        return self.account(CHEF)

    @cached_property
    def me(self) -> Account:
        return self.account(ASSISTENZ)

    def account(self, address: str) -> Account:
        return Account(address, config=self.config, autodiscover=False, access_type=DELEGATE)

    def open_inbox(self) -> None:
        newest = self.chef.inbox.all().order_by("-datetime_received")[0]
        assert newest.body is not None

    def three_calendars(self, start: str, end: str) -> None:
        team = self.account(TEAMKALENDER)
        calendars = [
            self.chef.calendar,
            team.calendar,
            self.chef.public_folders_root / "Termine Kreistag",
        ]
        a, b = datetime.fromisoformat(start), datetime.fromisoformat(end)
        shown = ("subject", "start", "end", "location", "is_all_day", "legacy_free_busy_status")
        events = {cal.id: list(cal.view(start=a, end=b).only(*shown)) for cal in calendars}
        assert all(events.values())  # each of the three has something to show
        overlay = sorted((e for found in events.values() for e in found), key=_start)
        assert overlay

    def triage(self, count: int, target: str, tag: str) -> None:
        inbox = self.chef.inbox
        mails = list(
            inbox.filter(subject__startswith=tag)
            .order_by("-datetime_received")
            .only("subject", "is_read", "flag_status")[:count]
        )
        folder = inbox / target
        for mail in mails:
            mail.is_read = True
            mail.flag_status = 2
        self.chef.bulk_update([(mail, ["is_read", "flag_status"]) for mail in mails])
        self.chef.bulk_move(ids=mails, to_folder=folder)
        assert len(mails) == count

    def send_on_behalf(self, to: str, attachment_size: int) -> None:
        mail = Message(
            account=self.me,
            folder=self.me.sent,
            author=Mailbox(email_address=CHEF),
            subject="Unterlagen zur Sitzung",
            body=HTMLBody("<p>Anbei die Unterlagen.</p>"),
            to_recipients=[Mailbox(email_address=to)],
        )
        mail.attach(FileAttachment(name="vorlage.pdf", content=b"%" * attachment_size))
        mail.send_and_save()

    def accept(self, subject: str) -> None:
        request = self.chef.inbox.filter(subject=subject).only("subject")[0]
        assert isinstance(request, MeetingRequest)
        # Not `request.accept()`: in the boss's Account it saves the answer to her Sent Items,
        # which a delegate with Editor on inbox and calendar may not open (ErrorAccessDenied,
        # in Exchange as in the lab). The answer goes from our account into our Sent Items.
        AcceptItem(
            account=self.me,
            reference_item_id=ReferenceItemId(id=request.id, changekey=request.changekey),
            body=Body("Frau Dr. Berg nimmt teil."),
        ).send()


def answer_lines(tasks: Mapping[str, Callable[..., Any]]) -> None:
    """Run the task each stdin line names with its JSON arguments; answer `done SECONDS`
    or `error TEXT` on stdout. The driver in `bench.bench_med` counts what reaches the lab."""
    print("ready", flush=True)  # imports and set-up done: the driver's clock may start
    for line in sys.stdin:
        name, _, args = line.strip().partition(" ")
        start = time.perf_counter()
        try:
            tasks[name](**json.loads(args or "{}"))
        except Exception as exc:  # reported to the driver, which prints it
            print(f"error {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
            continue
        print(f"done {time.perf_counter() - start:.6f}", flush=True)


def serve(url: str, password: str) -> None:
    """Answer task lines from stdin until it closes."""
    day = Day(url, password)
    answer_lines(
        {
            "open_inbox": day.open_inbox,
            "three_calendars": day.three_calendars,
            "triage": day.triage,
            "send_on_behalf": day.send_on_behalf,
            "accept": day.accept,
        }
    )


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
