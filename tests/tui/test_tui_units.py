"""The TUI's pure parts: HTML to text, config and keymap, drafts, rights, free slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from med.model import (
    BusySlot,
    BusyStatus,
    EditScope,
    Event,
    FolderKind,
    FreeBusy,
    Message,
    ReadAccess,
    Rights,
    Role,
)
from med.permissions import rights_for_role
from tui.actions import ALL_ACTIONS, action_ids
from tui.calendar_render import Shown, day_view, week_view
from tui.config import ConfigError, TuiConfig, parse_keymap
from tui.drafts import Draft, DraftStore
from tui.htmltext import html_to_text
from tui.presenter import rights_summary
from tui.rights import allows
from tui.screens.free_busy import free_slots


def test_html_mail_reads_as_text_without_markup_scripts_or_styles() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Hallo&nbsp;<b>Frau</b> Berg,</p><ul><li>eins</li><li>zwei</li></ul>"
        "<ol><li>a</li><li>b</li></ol><blockquote><p>alt</p></blockquote>"
        '<a href="https://x.example/a">Link</a><script>alert(1)</script></body></html>'
    )
    assert html_to_text(html) == (
        "Hallo Frau Berg,\n\n• eins\n• zwei\n\n1. a\n2. b\n\n> alt\n\nLink <https://x.example/a>"
    )


def test_html_link_whose_text_is_the_address_is_not_repeated() -> None:
    assert html_to_text('<a href="mailto:a@b.example">a@b.example</a>') == "a@b.example"


def test_every_action_id_is_unique_and_kebab_case() -> None:
    ids = [spec.id for spec in ALL_ACTIONS]
    assert len(ids) == len(set(ids))
    assert all(i == i.lower() and " " not in i and "_" not in i for i in ids)


def test_keymap_accepts_known_ids_with_one_or_several_keys() -> None:
    assert parse_keymap({"reply-all": "ctrl+r", "next-item": ["j", "ctrl+n"]}) == {
        "reply-all": "ctrl+r",
        "next-item": "j,ctrl+n",
    }
    assert parse_keymap(
        {"help": "question_mark", "page-down": ["pagedown", "shift+f5"], "search": "slash"}
    )


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"reply-everyone": "x"}, "no action called 'reply-everyone'"),
        ({"reply": 3}, "must be a key"),
        ({"reply": []}, "must be a key"),
        ({"reply": "a,b"}, "must be a key"),
        ({"reply": "ctrl+"}, "'ctrl\\+' is no key"),
        ({"reply": "ctlr+r"}, "is no key"),
        ({"next-item": ["j", "page down"]}, "'page down' is no key"),
        ({"next-item": "arrowdown"}, "is no key"),
    ],
)
def test_keymap_rejects_unknown_ids_and_bad_keys(table: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_keymap(table)


def test_tui_table_is_validated(tmp_path: Path) -> None:
    config = TuiConfig.from_mapping(
        {"page_size": 100, "editor": "nano", "animations": False},
        {"quit": "ctrl+q"},
        drafts_dir=tmp_path,
    )
    assert (config.page_size, config.editor, config.animations) == (100, "nano", False)
    assert config.keymap == {"quit": "ctrl+q"}
    with pytest.raises(ConfigError, match="page_size"):
        TuiConfig.from_mapping({"page_size": 5}, None, drafts_dir=tmp_path)
    with pytest.raises(ConfigError, match="Unknown setting in \\[tui\\]: colour"):
        TuiConfig.from_mapping({"colour": "red"}, None, drafts_dir=tmp_path)
    assert "quit" in action_ids()


def test_drafts_survive_a_new_store_and_are_discarded_once_sent(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts")
    draft = Draft(to="wolf@kreis.example", subject="Termin", body="Hallo")
    store.save(draft)
    (again,) = DraftStore(tmp_path / "drafts").all()
    assert again == draft
    store.discard(draft.draft_id)
    assert store.all() == []
    assert not list((tmp_path / "drafts").glob(".draft-*"))  # no temp files left behind


def test_draft_ids_cannot_escape_the_drafts_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hexadecimal"):
        DraftStore(tmp_path).load("../../etc/passwd")


def test_rights_summary_names_what_the_header_shows() -> None:
    assert rights_summary(Rights.full()) == "owner: all rights"
    assert rights_summary(rights_for_role(Role.REVIEWER)) == "read only"
    assert rights_summary(rights_for_role(Role.AUTHOR)) == "read, create, edit own, delete own"
    assert rights_summary(Rights(read=ReadAccess.FREEBUSY_TIME)) == "free/busy only"
    assert rights_summary(None).startswith("rights unknown")


def test_rights_gate_write_actions_and_mail_only_actions() -> None:
    reviewer = rights_for_role(Role.REVIEWER)
    editor = rights_for_role(Role.EDITOR)
    assert not allows(reviewer, "delete") and allows(editor, "delete")
    assert not allows(reviewer, "toggle_flag") and allows(reviewer, "reply", FolderKind.MAIL)
    assert not allows(editor, "reply", FolderKind.CONTACTS)
    assert allows(editor, "complete_item", FolderKind.TASKS)
    assert not allows(editor, "complete_item", FolderKind.MAIL)
    assert allows(Rights(edit=EditScope.OWN), "edit_event")
    assert allows(None, "delete")  # unknown rights: the server decides


def test_free_slots_skip_anyone_busy_or_tentative() -> None:
    day = datetime(2026, 11, 24, 8, tzinfo=UTC)
    people = [
        FreeBusy("a@x.example", (BusySlot(day, day + timedelta(hours=2), BusyStatus.BUSY),)),
        FreeBusy(
            "b@x.example",
            (BusySlot(day + timedelta(hours=3), day + timedelta(hours=4), BusyStatus.TENTATIVE),),
        ),
        FreeBusy("c@x.example", (), error="no data"),
    ]
    slots = free_slots(people, day, day + timedelta(hours=5), 60)
    assert slots == [day + timedelta(hours=2), day + timedelta(hours=4)]


def test_docs_list_every_action_id() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tui.md").read_text(encoding="utf-8")
    missing = [spec.id for spec in ALL_ACTIONS if f"`{spec.id}`" not in docs]
    assert missing == []


def test_draft_message_leaves_out_half_typed_addresses_and_keeps_its_server_item(
    tmp_path: Path,
) -> None:
    draft = Draft(to="wolf@kreis.example, chef@", cc="lena", subject="Termin", body="Hallo")
    assert [a.email for a in draft.message().to] == ["wolf@kreis.example"]
    assert draft.message().cc == ()
    assert draft.server_copy() is None
    draft.saved_on_server(Message(id="AAMk1", change_key="CK1", mailbox="chef@x.example"))
    store = DraftStore(tmp_path)
    store.save(draft)
    (again,) = store.all()
    copy = again.server_copy()
    assert copy is not None and (copy.id, copy.change_key, copy.mailbox) == (
        "AAMk1",
        "CK1",
        "chef@x.example",
    )


NOW_UTC = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _grid_lines(shown: list[Shown], selected: int | None = None) -> list[str]:
    console = Console(width=80, color_system=None, record=True)
    day = NOW_UTC.date()
    console.print(day_view(shown, day, selected, NOW_UTC.replace(hour=9)))
    return console.export_text().splitlines()


def _event(subject: str, start: tuple[int, int], end: tuple[int, int], **kw: Any) -> Event:
    return Event(
        subject=subject,
        start=NOW_UTC.replace(hour=start[0], minute=start[1]),
        end=NOW_UTC.replace(hour=end[0], minute=end[1]),
        **kw,
    )


def test_day_grid_puts_overlapping_calendars_side_by_side_and_hours_down_the_side() -> None:
    boss = Shown(_event("Jour fixe", (10, 0), (11, 0), location="Raum 204"), "Berg", "blue")
    team = Shown(_event("Teamrunde", (10, 30), (12, 0)), "Team", "orange1")
    alone = Shown(_event("Telefonat", (14, 0), (14, 30)), "Weber", "green")
    lines = _grid_lines([boss, team, alone])
    assert [ln[:5] for ln in lines if ln[:2].isdigit()] == [f"{h:02d}:00" for h in range(7, 20)]
    ten = next(ln for ln in lines if ln.startswith("10:00"))
    half_past = lines[lines.index(ten) + 1]
    assert "10:00–11:00 Jour fixe" in ten
    # 10:30: both appointments on one line, the earlier one left, each in its own lane
    assert half_past.index("Raum 204") < half_past.index("10:30–12:00 Teamrunde")
    assert half_past.index("10:30–12:00 Teamrunde") >= 6 + (80 - 7) // 2
    # an appointment alone gets the whole width
    fourteen = next(ln for ln in lines if ln.startswith("14:00"))
    assert fourteen[7:].startswith("14:00–14:30 Telefonat")


def test_week_columns_cut_long_subjects_instead_of_breaking_words() -> None:
    long = Shown(_event("Jour fixe Dezernentenrunde", (10, 0), (11, 0)), "Berg", "blue")
    console = Console(width=80, color_system=None, record=True)
    console.print(week_view([long], NOW_UTC.date(), None, NOW_UTC))
    text = console.export_text()
    assert "Jour fix…" in text
    assert "nten" not in text  # no word continued on a second line


def test_the_configured_player_plays_exactly_the_sound(tmp_path: Path) -> None:
    """Voicemail, chat voice messages and alarm recordings all go through one player path."""
    from tui.screens.attachments import playback, run_player

    heard = tmp_path / "heard.wav"
    player = tmp_path / "player.sh"
    player.write_text(f'#!/bin/sh\ncp "$2" {heard}\n')
    player.chmod(0o755)
    sound = b"RIFF\x00\x01voice"
    command, path = playback(sound, ".wav", f"{player} --quiet")
    assert command == [str(player), "--quiet"] and path.suffix == ".wav"
    run_player(command, path)
    assert heard.read_bytes() == sound


def test_without_a_player_the_sound_is_kept_for_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.screens.attachments import playback

    monkeypatch.setenv("PATH", str(tmp_path))  # no player on PATH
    command, path = playback(b"ogg", ".ogg", None)
    assert command is None and path.read_bytes() == b"ogg"
