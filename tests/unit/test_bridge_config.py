"""The bridge's configuration and rules: clear errors for mistakes, rules that pick right."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bridge.notify.config import ConfigError, QuietHours, parse_config
from bridge.notify.rules import match, not_before
from med import Address, Importance, Message

BASE = """
[messenger]
server = "https://chat.example"
user = "bridge@musterstadt.example"
password_env = "X"

[identities.service]
server = "https://mail.example/EWS/Exchange.asmx"
user = "assistenz@musterstadt.example"
auth = "ntlm"
password_env = "Y"

[[watch]]
mailbox = "chef@musterstadt.example"
identity = "service"
"""
RULE = """
[[rule]]
name = "r"
to = ["user:assistenz@musterstadt.example"]
"""


def parse(text: str) -> Any:
    return parse_config(tomllib.loads(text), data_dir=Path("/data"), worker_id="w")


def test_a_valid_file_gives_defaults_and_typed_values() -> None:
    config = parse(BASE + RULE)
    assert config.database == "sqlite:////data/bridge.db"
    assert config.watches[0].folders == ("inbox",)
    assert config.watches[0].rights_identity == "service"
    assert config.rules[0].to[0].key == "user:assistenz@musterstadt.example"
    assert config.mode == "streaming" and config.lease_seconds == 15.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('identity = "service"', 'identity = "nobody"'), "identity 'nobody'"),
        (lambda t: t + '\n[[rule]]\nname = "x"\nto = ["mail:someone"]\n', "must be user:ADDRESS"),
        (lambda t: t + '\n[[rule]]\nname = "x"\nto = []\n', "needs at least one recipient"),
        (lambda t: t.replace('password_env = "Y"', ""), "password_env or password_file"),
        (
            lambda t: t + '\n[[rule]]\nname="q"\nto=["group:A"]\nquiet_hours="25:00-06:00"\n',
            "22:00-06:00",
        ),
        (lambda t: t + '\n[[rule]]\nname="k"\nto=["group:A"]\nkinds=["fax"]\n', "'fax'"),
        (lambda t: t.replace("[[watch]]", "[[watch]]\ncolour = 1"), "unknown setting(s) colour"),
        (lambda t: "[bridge]\nmode = 'push'\n" + t, "bridge.mode"),
        (lambda t: t.replace('"chef@musterstadt.example"', '"public"', 1), "public folders"),
        (
            lambda t: t.replace(
                'identity = "service"', 'identity = "service"\nfolders = ["inbox//x"]'
            ),
            "'inbox//x' is no folder path",
        ),
        (
            lambda t: t.replace(
                '"chef@musterstadt.example"\n', '"public"\nfolders = ["Inbox/Vorgänge"]\n', 1
            ),
            "the public folders have no 'Inbox/Vorgänge'",
        ),
        (
            lambda t: t.replace(
                '"chef@musterstadt.example"\n', '"public"\nfolders = ["A"]\n', 1
            ).replace('auth = "ntlm"', 'backend = "graph"\nauth = "oauth"'),
            "Microsoft Graph has no public folders",
        ),
        (
            lambda t: t.replace(
                'auth = "ntlm"\npassword_env = "Y"', 'auth = "kerberos"\nkeytab = "/no/k"'
            ),
            "keytab /no/k cannot be read",
        ),
    ],
)
def test_mistakes_are_named_in_one_sentence(change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        parse(change(BASE + RULE))
    assert message in str(err.value)


def test_folder_paths_and_the_public_folder_tree_are_watched_as_written() -> None:
    text = BASE.replace(
        'identity = "service"', 'identity = "service"\nfolders = [" inbox/Projekte/2026/ "]'
    )
    text += '\n[[watch]]\nmailbox = "Public"\nfolders = ["Verwaltung/Rundschreiben"]\n'
    config = parse(text + 'identity = "service"\n' + RULE)
    assert config.watches[0].folders == ("inbox/Projekte/2026",)
    assert (config.watches[1].mailbox, config.watches[1].folders) == (
        "public",
        ("Verwaltung/Rundschreiben",),
    )


def test_without_rules_nothing_would_be_posted_and_that_is_an_error() -> None:
    with pytest.raises(ConfigError, match="without a rule"):
        parse(BASE)


def mail(**kw: Any) -> Message:
    values: dict[str, Any] = {
        "id": "1",
        "subject": "Haushalt",
        "from_": Address("lena@musterstadt.example"),
    }
    values.update(kw)
    return Message(**values)


def test_rules_match_on_every_named_criterion_and_send_each_recipient_once() -> None:
    config = parse(
        BASE
        + """
[[rule]]
name = "important"
importance = "high"
to = ["user:assistenz@musterstadt.example", "group:Vorzimmer"]

[[rule]]
name = "from-kreis"
senders = ["@kreis.example"]
keywords = ["eilt"]
to = ["user:assistenz@musterstadt.example"]
"""
    )
    important = mail(importance=Importance.HIGH, from_=Address("x@kreis.example"), subject="Eilt")
    picked = match(config.rules, important, "chef@musterstadt.example", "inbox")
    assert [(m.rule.name, m.recipient.key) for m in picked] == [
        ("important", "user:assistenz@musterstadt.example"),
        ("important", "group:Vorzimmer"),
    ]
    assert match(config.rules, mail(subject="Eilt"), "chef@musterstadt.example", "inbox") == []
    kreis = mail(from_=Address("y@kreis.example"), subject="EILT: Antrag")
    assert [m.rule.name for m in match(config.rules, kreis, "chef@m", "inbox")] == ["from-kreis"]


def test_quiet_hours_hold_notifications_until_they_end_also_across_midnight() -> None:
    config = parse(BASE + RULE.replace('name = "r"', 'name = "r"\nquiet_hours = "22:00-06:30"'))
    rule = config.rules[0]
    tz = timezone(timedelta(hours=1))
    late = datetime(2027, 1, 5, 23, 10, tzinfo=tz)
    assert not_before(rule, late) == datetime(2027, 1, 6, 6, 30, tzinfo=tz)
    early = datetime(2027, 1, 6, 5, 0, tzinfo=tz)
    assert not_before(rule, early) == datetime(2027, 1, 6, 6, 30, tzinfo=tz)
    noon = datetime(2027, 1, 6, 12, 0, tzinfo=tz)
    assert not_before(rule, noon) == noon
    assert QuietHours(time(8), time(9)).contains(time(8, 30))


def test_digest_rules_gather_into_the_next_slot() -> None:
    config = parse(BASE + RULE.replace('name = "r"', 'name = "r"\ndigest_minutes = 15'))
    moment = datetime(2027, 1, 6, 12, 7, tzinfo=UTC)
    assert not_before(config.rules[0], moment) == datetime(2027, 1, 6, 12, 15, tzinfo=UTC)


def test_digest_rows_of_one_route_and_slot_go_out_as_one_message() -> None:
    from bridge.notify.outbox import batch_rows
    from bridge.notify.store import OutboxRow

    def row(i: int, route: str = "user:a@m", digest: bool = True, slot: float = 900.0) -> OutboxRow:
        return OutboxRow(i, f"k{i}", "chef@m", f"id{i}", route, "r", {}, slot, digest, 0)

    rows = [row(1), row(2, digest=False), row(3), row(4, route="group:B"), row(5, slot=1800.0)]
    assert [[r.id for r in batch] for batch in batch_rows(rows)] == [[1, 3], [2], [4], [5]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accept #12", ("accept", 12, "")),
        ("Decline #3 Termin passt leider nicht", ("decline", 3, "Termin passt leider nicht")),
        ("flag", ("flag", None, "")),
        ("move #4 Vorgänge", ("move", 4, "Vorgänge")),
        (
            "forward #5 kaemmerei@musterstadt.example Zur Kenntnis",
            ("forward", 5, "kaemmerei@musterstadt.example Zur Kenntnis"),
        ),
        ("help", ("help", None, "")),
        ("Danke, erledige ich", None),
        ("", None),
    ],
)
def test_reply_commands_are_read_and_ordinary_chat_is_left_alone(
    text: str, expected: tuple[str, int | None, str] | None
) -> None:
    from bridge.notify.actions import parse_command

    command = parse_command(text)
    assert (None if command is None else (command.verb, command.ref, command.argument)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("move #4", "needs a folder"), ("forward #5 Kämmerei", "e-mail address")],
)
def test_malformed_commands_say_how_to_write_them(text: str, message: str) -> None:
    from bridge.notify.actions import CommandError, parse_command

    with pytest.raises(CommandError, match=message):
        parse_command(text)


def test_items_are_classed_as_the_rules_name_them() -> None:
    from bridge.notify.rules import item_kind
    from med import Event, Voicemail

    start = datetime(2027, 1, 6, 9, tzinfo=UTC)
    assert item_kind(mail()) == "mail"
    assert item_kind(mail(is_meeting_request=True)) == "meeting"
    assert item_kind(Voicemail(id="v", subject="Anruf")) == "voicemail"
    meeting = Event(id="e", start=start, end=start + timedelta(hours=1), is_meeting=True)
    assert item_kind(meeting) == "meeting"
