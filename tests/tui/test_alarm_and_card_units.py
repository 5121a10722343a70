"""Alarm board, position and voice input, and bridge cards, without a terminal.

Cards are parsed from the text the bridge itself renders (`bridge.notify.render`), so a change
of the bridge's format fails here rather than silently in the assistant's messenger.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.notify.render import actions_for, payload_for, render
from med import Address, Event, Importance, Message, Task
from messenger.client.alarms import AlarmReceived, AlarmStatus, Position
from tui.alarm_board import AlarmBoard, answer_rows, banner_lines, parse_position
from tui.cards import CardResults, parse_card, parse_item_link
from tui.config import ConfigError, TuiConfig
from tui.voice_recorder import RecorderMissing, VoiceError, load_voice, recorder_command

KEYS = {"alarm-acknowledge": "F2", "alarm-decline": "F3", "goto-alarms": "7"}


def received(
    alarm_id: str, level: str = "alarm", round_: int = 1, text: str = "x"
) -> AlarmReceived:
    return AlarmReceived(
        alarm_id, "l", level, text, round_, 1, "u-sender", "d", "2026-01-01T00:00:00+00:00"
    )


# ---------------------------------------------------------------------- positions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("52.52, 13.405", Position(52.52, 13.405)),
        ("52.52 13.405 ±8", Position(52.52, 13.405, 8.0)),
        ("-33,8688; 151,2093; 20 m", Position(-33.8688, 151.2093, 20.0)),
    ],
)
def test_positions_are_read_as_typed(text: str, expected: Position) -> None:
    assert parse_position(text) == expected


@pytest.mark.parametrize("text", ["", "Berlin", "52.52", "91, 0", "0, 181"])
def test_a_position_that_is_none_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"latitude|lat"):
        parse_position(text)


# ---------------------------------------------------------------------- the board


def test_the_banner_shows_the_highest_level_and_rings_for_new_rounds_only() -> None:
    board = AlarmBoard(names={"u-sender": "Leitstelle"})
    info, panic = received("a", "info", text="Kaffee"), received("b", "panic", text="Hilfe")
    assert board.apply([info], {"a": info}) is True
    assert board.apply([panic], {"a": info, "b": panic}) is True
    assert board.showing() == panic
    lines = banner_lines(board, KEYS)
    assert lines[0] == "⚠ PANIC from Leitstelle · 1 more open"
    assert lines[-1].startswith("F2 acknowledge · F3 decline")
    assert board.apply([panic], {"a": info, "b": panic}) is False  # the same round again
    again = received("b", "panic", round_=2, text="Hilfe")
    assert board.apply([again], {"a": info, "b": again}) is True
    board.answered("b")
    assert board.showing() == info
    # The server echoes this user's own answer: no alarm of theirs to watch.
    board.apply([AlarmStatus("b", "acknowledged", "closed", user_id="u-me")], {"a": info})
    assert board.watched == {}
    # Closed by someone else: the SDK drops it from `active`, the board follows.
    closed = AlarmStatus("a", "state", "closed")
    board.apply([closed], {})
    assert board.showing() is None and banner_lines(board, KEYS) == []


def test_answers_to_raised_alarms_are_collected_and_listed_answered_first() -> None:
    board = AlarmBoard()
    board.raised("a", "Wasserschaden", "urgent", "Hausdienst", "work")
    board.apply(
        [AlarmStatus("a", "acknowledged", "acknowledged", user_id="u1")], {}, profile="work"
    )
    assert [s.kind for s in board.watched["a"].answers] == ["acknowledged"]
    assert board.watched["a"].state == "acknowledged" and board.profiles["a"] == "work"
    status = {
        "recipients": [
            {"user_id": "u2", "tier": 1, "rounds": 1, "notified_at": "2026-01-01T10:00:00"},
            {
                "user_id": "u1",
                "tier": 1,
                "rounds": 1,
                "notified_at": "2026-01-01T10:00:00",
                "acknowledged_at": "2026-01-01T10:01:30",
            },
            {"user_id": "u3", "tier": 2, "rounds": 0},
            {
                "user_id": "u4",
                "tier": 1,
                "rounds": 1,
                "declined_at": "2026-01-01T10:02:00",
                "decline_reason": "krank",
            },
        ]
    }
    rows = answer_rows(status, {"u1": "Anna"})  # times as UTC shows them
    assert [(r[0], r[3], r[4], r[5]) for r in rows] == [
        ("Anna", "acknowledged", "10:01:30", ""),
        ("u4", "declined", "10:02:00", "krank"),
        ("u2", "alarmed", "10:00:00", ""),
        ("u3", "not alarmed yet", "", ""),
    ]


# ---------------------------------------------------------------------- settings and voice


def test_alarm_settings_are_checked_with_a_sentence(tmp_path: Path) -> None:
    config = TuiConfig.from_mapping(
        {"panic_position": "48.1, 11.5", "panic_voice": "~/hilfe.ogg", "record_seconds": 5},
        None,
        drafts_dir=tmp_path,
    )
    assert config.panic_voice == Path.home() / "hilfe.ogg" and config.record_seconds == 5
    with pytest.raises(ConfigError, match="panic_position"):
        TuiConfig.from_mapping({"panic_position": "beim Chef"}, None, drafts_dir=tmp_path)
    with pytest.raises(ConfigError, match="record_seconds"):
        TuiConfig.from_mapping({"record_seconds": 0}, None, drafts_dir=tmp_path)
    with pytest.raises(ConfigError, match="desktop_notifications"):
        TuiConfig.from_mapping({"desktop_notifications": "ja"}, None, drafts_dir=tmp_path)


def test_voice_files_are_checked_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data = b"\x00" * 16000
    wav = (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip
    (tmp_path / "ok.wav").write_bytes(wav)
    clip = load_voice(tmp_path / "ok.wav")
    assert (clip.mime, clip.duration_ms) == ("audio/wav", 1000)
    (tmp_path / "song.mp3").write_bytes(b"ID3\x03" + b"\x00" * 100)
    with pytest.raises(VoiceError, match="cannot be sent as a voice message"):
        load_voice(tmp_path / "song.mp3")
    with pytest.raises(VoiceError, match="Cannot read"):
        load_voice(tmp_path / "missing.ogg")
    # A configured recorder is used as written; without one and none installed, one sentence.
    assert recorder_command("rec -d {seconds} {path}", Path("/t/v.wav"), 7) == [
        "rec",
        "-d",
        "7",
        "/t/v.wav",
    ]
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RecorderMissing, match="panic_voice"):
        recorder_command(None, Path("/t/v.wav"), 7)


# ---------------------------------------------------------------------- cards


def test_a_mail_notification_reads_as_its_card() -> None:
    mail = Message(
        id="AAMk/+1=",
        subject="Haushaltsentwurf 2027",
        body="<p>Bitte bis <b>Freitag</b> prüfen.</p>",
        body_is_html=True,
        importance=Importance.HIGH,
        from_=Address("lena@musterstadt.example", "Lena Koch"),
    )
    payload = payload_for(mail, "chef@musterstadt.example", "Posteingang")
    buttons = tuple((a["label"], a["reply"]) for a in actions_for("mail", 12))
    card = parse_card(render(payload, 12), buttons)
    assert card is not None
    assert (card.ref, card.kind, card.mailbox, card.folder, card.important) == (
        12,
        "mail",
        "chef@musterstadt.example",
        "Posteingang",
        True,
    )
    assert card.subject == "Haushaltsentwurf 2027" and "Lena Koch" in card.sender
    assert card.preview == "Bitte bis Freitag prüfen."
    assert (card.link.mailbox, card.link.item_id) == ("chef@musterstadt.example", "AAMk/+1=")
    assert card.command("read") == "read #12" and card.command("accept") is None
    assert card.verbs() == ["read", "flag"]


def test_a_meeting_notification_offers_the_bridges_answers() -> None:
    meeting = Event(
        id="EV1",
        subject="Abstimmung Kreisumlage",
        start=datetime(2027, 3, 10, 9, tzinfo=UTC),
        end=datetime(2027, 3, 10, 10, tzinfo=UTC),
        location="Raum 2.14",
        organizer=Address("lena@musterstadt.example"),
    )
    payload = payload_for(meeting, "chef@musterstadt.example", "Posteingang", "meeting")
    buttons = tuple((a["label"], a["reply"]) for a in actions_for("meeting", 3))
    card = parse_card(render(payload, 3), buttons)
    assert card is not None and card.kind == "meeting"
    assert (card.start, card.location) == ("2027-03-10T09:00:00+00:00", "Raum 2.14")
    assert card.verbs() == ["accept", "tentative", "decline", "read", "flag"]
    assert card.command("tentative") == "tentative #3"


def test_a_new_task_reads_as_a_task_card_that_can_be_completed() -> None:
    task = Task(id="TK1", subject="Grußwort schreiben", due=datetime(2027, 5, 3, tzinfo=UTC))
    payload = payload_for(task, "chef@musterstadt.example", "Aufgaben")
    buttons = tuple((a["label"], a["reply"]) for a in actions_for(payload["kind"], 7))
    text = render(payload, 7)
    assert text.startswith("[Task #7] chef@musterstadt.example › Aufgaben")
    assert text.splitlines()[-1] == "Reply with: done #7 · move #7 FOLDER"
    card = parse_card(text, buttons)
    assert card is not None and (card.kind, card.due) == ("task", "2027-05-03")
    assert card.verbs() == ["done"] and card.command("read") is None


@pytest.mark.parametrize(
    "text",
    [
        "Done: accept “Abstimmung” on behalf of chef@musterstadt.example.",
        "Digest: 2 new items\n#1 a · b\n   medbridge://item/chef@x/AA",
        "[Mail #1] chef@x › Posteingang\nSubject: ohne Verweis",
        "Hallo, kannst du mal schauen?",
    ],
)
def test_other_messages_are_no_cards(text: str) -> None:
    assert parse_card(text) is None


def test_links_and_answers() -> None:
    assert parse_item_link("medbridge://item/chef@x.example/AAMk%2F%2B1%3D") is not None
    assert parse_item_link("https://example.org/item/a/b") is None
    results = CardResults()
    results.sent("c1", 12, "accept #12")
    results.sent("c1", 13, "flag #13")
    assert "sent" in results.result("c1", 12)
    assert results.answer("c2", "Done: something") is None  # nothing waits there
    assert results.answer("c1", "Done: accept “A”.") == 12
    assert results.answer("c1", "Refused: no right.") == 13
    assert results.answer("c1", "Done: more") is None
    assert results.result("c1", 13) == "Refused: no right."


def test_answers_naming_their_command_go_to_its_card_in_any_order() -> None:
    results = CardResults()
    first = results.sent("c1", 12, "accept #12")
    second = results.sent("c1", 13, "flag #13")
    first.txn_id, second.txn_id = "t12", "t13"
    assert results.stored("c1", "t12", 40) is None
    assert results.stored("c1", "t13", 41) is None
    assert results.answer("c1", "Done: “B” flagged.", reply_to=41) == 13
    # An answer to a command typed by hand (seq 39) belongs to no card.
    assert results.answer("c1", "Done: “C” marked read.", reply_to=39) is None
    assert results.result("c1", 12).startswith("“accept #12” sent")
    assert results.answer("c1", "Done: accept “A”.", reply_to=40) == 12
    assert results.result("c1", 13) == "Done: “B” flagged."
    assert results.waiting == {"c1": []}


def test_an_answer_before_its_commands_seq_is_known_waits_for_it() -> None:
    results = CardResults()
    sent = results.sent("c1", 7, "read #7")
    assert results.answer("c1", "Done: “A” marked read.", reply_to=50) is None
    assert "sent" in results.result("c1", 7)
    sent.txn_id = "tx"
    assert results.stored("c1", "tx", 50) == 7
    assert results.result("c1", 7) == "Done: “A” marked read."


async def test_a_recording_comes_from_the_configured_recorder(tmp_path: Path) -> None:
    from tui.voice_recorder import record_voice

    source = tmp_path / "speech.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data = b"\x01\x00" * 16000
    source.write_bytes(
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip
    recorder = tmp_path / "rec.sh"
    recorder.write_text(f'#!/bin/sh\n[ "$2" = 3 ] && cp {source} "$1"\n')
    recorder.chmod(0o755)
    clip = await record_voice(f"{recorder} {{path}} {{seconds}}", tmp_path / "out.wav", 3)
    assert (clip.mime, clip.duration_ms, clip.data) == ("audio/wav", 2000, source.read_bytes())
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\necho 'no capture device' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(VoiceError, match="no capture device"):
        await record_voice(f"{failing} {{path}}", tmp_path / "none.wav", 3)


async def test_desktop_notifications_go_to_notify_send_where_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.desktop_notify import notify_desktop

    monkeypatch.setenv("PATH", str(tmp_path))
    assert await notify_desktop("ALARM", "Brand", urgent=True) is False  # none: skipped
    log = tmp_path / "args"
    notifier = tmp_path / "notify-send"
    notifier.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    notifier.chmod(0o755)
    assert await notify_desktop("ALARM from Leitstelle", "Brand in Halle 3", urgent=True)
    assert log.read_text().splitlines() == [
        "--app-name=medbridge",
        "--urgency=critical",
        "ALARM from Leitstelle",
        "Brand in Halle 3",
    ]
