"""Every key-bound action of the TUI, named once with a stable id.

The ids are the public contract of the `[keymap]` table in the config file: users rebind by id,
so an id is never renamed once released. Defaults follow mutt, aerc and khal habits. Each screen
builds its `BINDINGS` from its group here, so the help screen, the footer and the keymap agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class ActionSpec:
    """One user-visible action: stable id, default keys, the Textual action it runs, a label."""

    id: str
    keys: str
    action: str
    description: str
    show: bool = True
    priority: bool = False

    def binding(self) -> Binding:
        return Binding(
            self.keys,
            self.action,
            self.description,
            show=self.show,
            priority=self.priority,
            id=self.id,
        )


# Global: available on every screen.
APP_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("quit", "q", "quit", "Quit"),
    # As in mutt: ctrl+c ends the program from anywhere (drafts are saved as they are typed).
    ActionSpec("interrupt", "ctrl+c", "interrupt", "Quit now", show=False, priority=True),
    ActionSpec("help", "question_mark", "help", "Help"),
    ActionSpec("command-palette", "colon,ctrl+p", "command_palette", "Commands", show=False),
    ActionSpec("goto-mail", "1", "goto('mail')", "Mail", show=False),
    ActionSpec("goto-calendar", "2", "goto('calendar')", "Calendar", show=False),
    ActionSpec("goto-tasks", "3", "goto('tasks')", "Tasks", show=False),
    ActionSpec("goto-contacts", "4", "goto('contacts')", "Contacts", show=False),
    ActionSpec("goto-notes", "5", "goto('notes')", "Notes", show=False),
    ActionSpec("goto-messenger", "6", "goto('messenger')", "Messenger", show=False),
    ActionSpec("goto-alarms", "7", "goto('alarms')", "Alarms", show=False),
    ActionSpec("goto-cards", "8", "goto('cards')", "Mailbox notifications", show=False),
    # Alarms are answered from any screen, also while typing: function keys, enabled only
    # while an alarm is shown (otherwise the key goes to the screen as usual).
    ActionSpec("alarm-acknowledge", "f2", "acknowledge_alarm", "Acknowledge alarm", priority=True),
    ActionSpec("alarm-decline", "f3", "decline_alarm", "Decline alarm", priority=True),
    ActionSpec("panic", "f12", "panic", "Panic", show=False, priority=True),
)

# Mail screen: folder tree, item list, reader; also tasks, contacts and notes folders.
MAIL_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("next-item", "j,down", "next_item", "Next", show=False),
    ActionSpec("prev-item", "k,up", "prev_item", "Previous", show=False),
    ActionSpec("first-item", "g,home", "first_item", "First", show=False),
    ActionSpec("last-item", "G,end", "last_item", "Last", show=False),
    ActionSpec("page-down", "ctrl+d,pagedown", "page_down", "Page down", show=False),
    ActionSpec("page-up", "ctrl+u,pageup", "page_up", "Page up", show=False),
    ActionSpec("focus-folders", "h", "focus_folders", "Folders", show=False),
    ActionSpec("focus-items", "l", "focus_items", "Items", show=False),
    ActionSpec("pager-down", "space", "pager(1)", "Read on", show=False),
    ActionSpec("pager-up", "minus", "pager(-1)", "Read back", show=False),
    ActionSpec("open-item", "enter", "open_item", "Open", show=False),
    ActionSpec("search", "slash", "search", "Search"),
    ActionSpec("search-next", "n", "search_next", "Next match", show=False),
    ActionSpec("search-prev", "N", "search_prev", "Previous match", show=False),
    ActionSpec("compose", "c", "compose", "Compose/New"),
    ActionSpec("reply", "r", "reply", "Reply"),
    ActionSpec("reply-all", "R", "reply_all", "Reply all"),
    ActionSpec("forward", "f", "forward", "Forward"),
    ActionSpec("delete", "d", "delete", "Delete"),
    ActionSpec("toggle-read", "u", "toggle_read", "Read/unread"),
    ActionSpec("toggle-flag", "F", "toggle_flag", "Flag"),
    ActionSpec("set-due", "D", "set_due", "Due date", show=False),
    ActionSpec("categories", "number_sign", "categories", "Categories", show=False),
    ActionSpec("importance", "exclamation_mark", "importance", "Importance", show=False),
    ActionSpec("move", "m", "move", "Move"),
    ActionSpec("attachments", "v", "attachments", "Attachments", show=False),
    ActionSpec("edit-item", "e", "edit_item", "Edit"),
    ActionSpec("complete-item", "x", "complete_item", "Complete"),
    ActionSpec("refresh", "dollar_sign", "refresh", "Refresh", show=False),
    ActionSpec("mailbox-settings", "O", "mailbox_settings", "Out of office, rules", show=False),
    ActionSpec("search-mailboxes", "S", "search_mailboxes", "Search all mailboxes", show=False),
    ActionSpec("toggle-chat", "M", "toggle_chat", "Messenger pane", show=False),
)

# Calendar screen: day, week and agenda views over several calendars.
CALENDAR_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("today", "t", "today", "Today"),
    ActionSpec("prev-day", "h,left", "shift_days(-1)", "Previous", show=False),
    ActionSpec("next-day", "l,right", "shift_days(1)", "Next", show=False),
    ActionSpec("prev-week", "H", "shift_days(-7)", "Previous week", show=False),
    ActionSpec("next-week", "L", "shift_days(7)", "Next week", show=False),
    ActionSpec("goto-date", "g", "goto_date", "Go to date"),
    ActionSpec("view-day", "D", "set_view('day')", "Day"),
    ActionSpec("view-week", "W", "set_view('week')", "Week"),
    ActionSpec("view-agenda", "A", "set_view('agenda')", "Agenda"),
    ActionSpec("next-event", "j,down", "next_event", "Next event", show=False),
    ActionSpec("prev-event", "k,up", "prev_event", "Previous event", show=False),
    ActionSpec("new-event", "n", "new_event", "New"),
    ActionSpec("edit-event", "e", "edit_event", "Edit"),
    ActionSpec("move-event", "M", "move_event", "Move", show=False),
    ActionSpec("delete-event", "d", "delete_event", "Delete"),
    ActionSpec("respond", "r", "respond", "Respond"),
    ActionSpec("calendars", "o", "calendars", "Calendars"),
    ActionSpec("target-calendar", "T", "target_calendar", "New ones go here"),
    ActionSpec("free-busy", "b", "free_busy", "Free/busy"),
    ActionSpec("schedule-meeting", "S", "schedule_meeting", "Scheduling assistant", show=False),
)

# Compose: in-app editor, $EDITOR, review before sending.
COMPOSE_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("review-send", "ctrl+s", "review", "Review and send", priority=True),
    ActionSpec("external-editor", "ctrl+e", "external_editor", "$EDITOR", priority=True),
    ActionSpec("send-as", "ctrl+o", "cycle_sender", "Send as", priority=True),
    ActionSpec("close-compose", "escape", "close", "Close (draft kept)", priority=True),
)

# Messenger: the full screen (6) and the pane beside the mail (M); active while it has the focus.
MESSENGER_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("chat-next", "j", "move(1)", "Next", show=False),
    ActionSpec("chat-prev", "k", "move(-1)", "Previous", show=False),
    ActionSpec("chat-conversations", "h", "focus_conversations", "Conversations", show=False),
    ActionSpec("chat-messages", "l", "focus_messages", "Messages", show=False),
    ActionSpec("chat-write", "i,c", "write", "Write"),
    ActionSpec("chat-reply", "r", "reply", "Reply"),
    ActionSpec("chat-react", "plus", "react", "React"),
    ActionSpec("chat-file", "a", "attach", "File/image"),
    ActionSpec("chat-voice", "V", "voice", "Voice", show=False),
    ActionSpec("chat-position", "P", "position", "Position", show=False),
    ActionSpec("chat-open", "o", "open_line", "Open/view"),
    ActionSpec("chat-play", "p", "play", "Play voice", show=False),
    ActionSpec("chat-save", "s", "save", "Save file", show=False),
    ActionSpec("chat-new", "n", "new_chat", "New chat", show=False),
    ActionSpec("chat-safety", "S", "safety_number", "Safety number", show=False),
    ActionSpec("chat-devices", "D", "devices", "My devices", show=False),
)

# Alarm screen: alarms for you and those you raised; the who-has-acknowledged view.
ALARM_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("raise-alarm", "n", "raise_alarm", "Raise alarm"),
    ActionSpec("alarm-status", "enter", "alarm_status", "Who answered"),
    ActionSpec("alarm-ack-selected", "a", "answer_selected('acknowledged')", "Acknowledge"),
    ActionSpec("alarm-decline-selected", "x", "answer_selected('declined')", "Decline"),
    ActionSpec("alarm-end", "E", "end_alarm", "End alarm"),
    ActionSpec("alarm-play", "p", "play_voice", "Play voice"),
    ActionSpec("alarm-next", "j,down", "move(1)", "Next", show=False),
    ActionSpec("alarm-prev", "k,up", "move(-1)", "Previous", show=False),
)

# Who has answered an alarm (the sender's and the list admins' view).
ALARM_STATUS_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("alarm-status-close", "escape,q", "app.pop_screen", "Close"),
    ActionSpec("alarm-status-end", "E", "end_alarm", "End alarm"),
)

# The panic dialog: nothing is sent before ctrl+s.
PANIC_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("panic-send", "ctrl+s", "send", "Send panic", priority=True),
    ActionSpec("panic-record", "ctrl+r", "record", "Record voice"),
    ActionSpec("panic-cancel", "escape", "cancel", "Cancel"),
)

# A bridge notification's card in the messenger: open the mailbox item, answer from the card.
CARD_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("card-open", "enter", "open_card", "Open item"),
    ActionSpec("card-accept", "a", "card_command('accept')", "Accept"),
    ActionSpec("card-tentative", "t", "card_command('tentative')", "Tentative"),
    ActionSpec("card-decline", "x", "card_command('decline')", "Decline"),
    ActionSpec("card-flag", "F", "card_command('flag')", "Flag"),
    ActionSpec("card-read", "u", "card_command('read')", "Mark read"),
    ActionSpec("card-done", "d", "card_command('done')", "Task done"),
)

# Screen 8, the cards of all conversations.
CARDS_SCREEN_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("card-next", "j,down", "app.focus_next", "Next card", show=False),
    ActionSpec("card-prev", "k,up", "app.focus_previous", "Previous card", show=False),
)

# The same cards in the messenger pane (Enter there opens the item, as on the card).
PANE_CARD_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("chat-card-answer", "A", "answer_card", "Answer card", show=False),
)

ALL_ACTIONS: tuple[ActionSpec, ...] = (
    APP_ACTIONS
    + MAIL_ACTIONS
    + CALENDAR_ACTIONS
    + COMPOSE_ACTIONS
    + MESSENGER_ACTIONS
    + ALARM_ACTIONS
    + ALARM_STATUS_ACTIONS
    + PANIC_ACTIONS
    + CARD_ACTIONS
    + CARDS_SCREEN_ACTIONS
    + PANE_CARD_ACTIONS
)


def bindings(group: tuple[ActionSpec, ...]) -> list[BindingType]:
    return [spec.binding() for spec in group]


def action_ids() -> frozenset[str]:
    return frozenset(spec.id for spec in ALL_ACTIONS)
