"""What the mailbox command groups share: profile, session, folder lookup, time parsing.

Every command runs one coroutine through `run`, which turns any `MedError` into one line on
stderr and a non-zero exit. med is imported inside functions so `medbridge --help` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from bridge import paths
from bridge.commands._common import fail, med_settings, print_json

if TYPE_CHECKING:
    from med import DelegateSession, Folder, Item, Page, Profile

T = TypeVar("T")

PROFILE = typer.Option(None, "--profile", "-p", help="Profile from the config file.")
MAILBOX = typer.Option(None, "--mailbox", "-m", help="Work in this mailbox (default: your own).")
JSON = typer.Option(False, "--json", help="Print JSON (stable shape, see docs).")

#: Exit codes by error class, so scripts can tell them apart.
EXIT_CODES = {
    "AuthError": 3,
    "AccessDenied": 4,
    "NotFound": 5,
    "Throttled": 6,
    "Unsupported": 7,
    "Conflict": 8,
    "InvalidInput": 2,
    "Unreachable": 9,
}


def exit_code(exc: Exception) -> int:
    """The exit code for an error: its class's (or nearest base's) entry in EXIT_CODES, else 1."""
    return next((EXIT_CODES[c.__name__] for c in type(exc).__mro__ if c.__name__ in EXIT_CODES), 1)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a MedError becomes one line on stderr and a non-zero exit."""
    from med import MedError

    try:
        return asyncio.run(_guarded(work))
    except MedError as exc:
        fail(str(exc), exit_code(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


async def _guarded(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def password_for(profile: Profile) -> str | None:
    """The password from MEDBRIDGE_PASSWORD, else a prompt; None where the sign-in method can
    go without one (a Kerberos ticket cache, OAuth tokens)."""
    from med.auth import PasswordUse, sign_in

    use = sign_in(profile.auth).password_use
    if use is PasswordUse.NEVER:
        return None
    env = os.environ.get("MEDBRIDGE_PASSWORD")
    if env:
        return env
    if use is PasswordUse.OPTIONAL:
        return None
    if env is not None:
        fail("MEDBRIDGE_PASSWORD is empty; the server needs a password", 3)
    if not sys.stdin.isatty():
        fail("no password: set MEDBRIDGE_PASSWORD or run interactively", 3)
    password = getpass.getpass(f"Password for {profile.username or profile.user}: ")
    if not password:
        fail("the password is empty; the server needs one", 3)
    return password


def load_profile(name: str | None) -> Profile:
    from med.config import choose_profile

    return choose_profile(med_settings(), name)


def open_session(profile_name: str | None) -> DelegateSession:
    from med import DelegateSession
    from med.auth import sign_in

    profile = load_profile(profile_name)
    # Tokens of `medbridge signin` for OAuth; a password (or a ticket cache) for the rest.
    token_cache = paths.token_cache_file() if sign_in(profile.auth).uses_token_cache else None
    # Each command is a new session: the folders earlier ones found are remembered.
    return DelegateSession.open(
        profile,
        password=password_for(profile),
        token_cache=token_cache,
        cache_dir=paths.cache_dir(),
    )


PUBLIC_HINT = (
    "The public folders have no {spec!r}: name a public folder by path "
    "(see `medbridge folders tree --public`)."
)


def check_mailbox(session: DelegateSession, mailbox: str | None) -> str:
    """The address to work in, lower-cased: own when None; "public" for the public folders.

    Raises:
        InvalidInput: the value is no e-mail address (and not "public").
    """
    from med import InvalidInput

    box = (mailbox or session.user).strip().lower()
    if box != "public" and "@" not in box:
        raise InvalidInput(
            f"{mailbox!r} is not an e-mail address: give a mailbox as name@domain "
            "(`medbridge folders mailboxes` lists yours)."
        )
    return box


async def find_folder(
    session: DelegateSession, mailbox: str | None, spec: str, *, default: str = "inbox"
) -> Folder:
    """A folder by well-known name, path ("Posteingang/Projekte", "inbox/Projekte"), display
    name or id. With mailbox "public" only the public folder tree is searched.

    Raises:
        InvalidInput: a well-known name in the public folders, or a bad address.
        NotFound: no such folder.
    """
    from med import InvalidInput, Mailbox, MailboxKind, NotFound, WellKnownFolder

    # Journal and the public folders' root are no folders to name here.
    well_known = set(WellKnownFolder) - {
        WellKnownFolder.JOURNAL,
        WellKnownFolder.PUBLIC_FOLDERS_ROOT,
    }

    box = check_mailbox(session, mailbox)
    spec = spec or default
    wanted = [p for p in spec.strip("/").split("/") if p]
    public = box == "public"
    if public and wanted and wanted[0].lower() in well_known:
        raise InvalidInput(PUBLIC_HINT.format(spec=spec))
    if spec.lower() in well_known:
        return await session.default_folder(box, spec.lower())
    if len(wanted) > 1:  # a path: med walks it (and remembers it in its folder cache)
        with contextlib.suppress(NotFound):
            return await session.folder_at(box, spec)
    if public:
        tree = await session.folder_tree(Mailbox("public", "Public Folders", MailboxKind.PUBLIC))
    else:
        tree = await session.folder_tree(box)
    for folder in tree.walk():
        if folder.id == spec:
            return folder
    for child in tree.children if len(wanted) == 1 else ():  # a name at the top first
        if child.folder.name.lower() == wanted[0].lower():
            return child.folder
    by_name = [f for f in tree.walk() if f.name.lower() == spec.lower()]
    if len(by_name) == 1:
        return by_name[0]
    raise NotFound(f"No folder {spec!r} in {box}.", mailbox=box, folder=spec)


def local_zone() -> tzinfo:
    """The machine's IANA zone (TZ, /etc/timezone, /etc/localtime), else its fixed offset.

    A named zone matters: series created in it keep their local time across DST.
    """
    from pathlib import Path
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    with contextlib.suppress(OSError):
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(name)
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def parse_when(text: str, *, end_of_day: bool = False) -> datetime:
    """ISO date or datetime; naive values are local time; "today"/"tomorrow" work too.

    Bad input ends the command with one line (exit 2), also outside `run`.
    """
    text = text.strip()
    today = date.today()
    if text.lower() in ("today", "heute"):
        day = today
    elif text.lower() in ("tomorrow", "morgen"):
        day = today + timedelta(days=1)
    else:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            fail(f"{text!r} is no date or time (use 2026-11-24 or 2026-11-24T14:00)", 2)
        if len(text) > 10:
            return value if value.tzinfo else value.replace(tzinfo=local_zone())
        day = value.date()
    moment = datetime.combine(day, time(0), tzinfo=local_zone())
    return moment + timedelta(days=1) if end_of_day else moment


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    """JSON (via med.to_jsonable) or the human rendering."""
    from med import to_jsonable

    if as_json:
        print_json(to_jsonable(data))
    else:
        human()


def emit_page(folder: Folder, page: Page[Item], as_json: bool) -> None:
    """One page of a folder listing: the documented JSON shape, or a line per item."""

    def human() -> None:
        for item in page.items:
            typer.echo(item_line(item))
        if page.more:
            typer.echo(f"… more: --offset {page.next_offset}")

    emit(
        {
            "folder": folder,
            "offset": page.offset,
            "more": page.more,
            "total": page.total,
            "items": list(page.items),
        },
        as_json,
        human,
    )


def short(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")


def item_line(item: Item) -> str:
    """One line per item for listings: id, date, who, subject."""
    from med import Contact, Event, Message, Task

    flag = "!" if item.flag.status.value == "flagged" else " "
    if isinstance(item, Message):
        unread = "*" if not item.is_read else " "
        who = item.from_.name or item.from_.email if item.from_ else ""
        return (
            f"{item.id}  {unread}{flag} {when(item.received)}  {short(who, 24):24}  {item.subject}"
        )
    if isinstance(item, Event):
        return f"{item.id}  {when(item.start)}–{when(item.end)[11:]}  {item.subject}"
    if isinstance(item, Task):
        return f"{item.id}  {item.status.value:12} due {when(item.due)}  {item.subject}"
    if isinstance(item, Contact):
        return f"{item.id}  {item.display_name or item.subject}  {', '.join(item.emails)}"
    return f"{item.id}  {when(item.last_modified)}  {item.subject}"
