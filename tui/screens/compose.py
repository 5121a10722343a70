"""Compose, reply, reply-all and forward; on behalf of the mailbox owner or as a functional mailbox.

The draft is autosaved locally on every pause in typing and kept until the server accepted
the message, so nothing written is lost when the app, the terminal or the connection dies.
After a longer pause it is also saved into the Drafts of the mailbox it goes out from (created
once, then the same item updated), where Outlook and the owner see it; when the server refuses
or cannot be reached the status line says the draft is on this computer only. Sending always
passes through the review screen and removes the server draft.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, Select, Static, TextArea

from med import DelegateSession
from med.errors import AccessDenied, Conflict, MedError, NotFound, ServerError
from med.model import (
    Item,
    LastVerb,
    Mailbox,
    MailboxKind,
    Message,
    OutgoingAttachment,
    SendOptions,
)
from med.quoting import quote_header
from tui import messages as msg
from tui.actions import COMPOSE_ACTIONS, bindings
from tui.drafts import Draft, parse_addresses
from tui.editor import EditorMissing, editor_command
from tui.htmltext import html_to_text
from tui.screens.base import MedModal, MedScreen
from tui.widgets.mail_tips import MailTipsPanel

if TYPE_CHECKING:
    from tui.app import MedApp

AUTOSAVE_DELAY_S = 0.5
#: Pause in typing after which the draft goes to the server (a request per pause, not per key).
SERVER_SAVE_DELAY_S = 3.0
_DRAFT_FIELDS = ["subject", "body", "to", "cc", "bcc"]
_VERB_OF_MODE = {
    "reply": LastVerb.REPLIED,
    "reply-all": LastVerb.REPLIED_ALL,
    "forward": LastVerb.FORWARDED,
}


async def save_on_server(session: DelegateSession, user: str, draft: Draft) -> None:
    """Create the draft in the sender's Drafts, or update the item saved before.

    Records the server item on `draft`. A copy saved for another sender is removed first (it
    sits in the wrong mailbox); one deleted meanwhile (in Outlook, say) is created anew.
    """
    options = SendOptions(from_mailbox=None if draft.sender == user else draft.sender)
    current = draft.server_copy()
    if current is not None and draft.server_sender != draft.sender:
        with contextlib.suppress(NotFound, AccessDenied):
            await session.delete(current.id, hard=True)
        draft.forget_server_copy()
        current = None
    if current is not None:
        try:
            saved: Item = await session.update(current, _DRAFT_FIELDS)
        except Conflict:
            # Changed elsewhere since our last save: what is on this screen is newer.
            saved = await session.update(
                dataclasses.replace(current, change_key=None), _DRAFT_FIELDS
            )
        except NotFound:
            draft.forget_server_copy()
            saved = await session.save_draft(draft.message(), options)
    else:
        saved = await session.save_draft(draft.message(), options)
    draft.saved_on_server(saved)


def local_only_reason(exc: MedError) -> str:
    """The status line's words for why the draft is only on this computer."""
    if isinstance(exc, AccessDenied):
        return f"the server refused it: {exc}"
    if isinstance(exc, ServerError):
        return f"the server is not reachable ({exc})"
    return str(exc)


class AddressSuggester(Suggester):
    """Completes the last entry of a comma-separated list from the server's directory: an
    address by its beginning, a person by (part of) the name ("Koch" -> Lena Koch).

    A suggestion is always the field's text as typed plus more, never a rewrite of it:
    accepting one keeps every key typed (and its case). Textual shows a suggestion only while
    the field still holds the value it was asked for, so keys typed before the directory
    answers stay, and a late answer is dropped.
    """

    def __init__(self, app: MedApp) -> None:
        # Case-sensitive here so that we see the text as typed; matching ignores case below.
        super().__init__(use_cache=True, case_sensitive=True)
        self.medapp = app

    async def get_suggestion(self, value: str) -> str | None:
        typed = value.rpartition(",")[2].lstrip()
        if len(typed) < 2 or "<" in typed:
            return None
        try:
            found = await self.medapp.session.resolve_names(typed.strip())
        except MedError:
            return None  # completion is a convenience; the review screen checks addresses
        for mailbox in found:
            if mailbox.address.lower().startswith(typed.lower()):
                return value + mailbox.address[len(typed) :]
        for mailbox in found:
            if typed.strip().lower() in mailbox.display_name.lower():
                return f"{value} — {mailbox.display_name} <{mailbox.address}>"
        return None


def sender_label(mailbox: Mailbox, user: str) -> str:
    if mailbox.address == user:
        return f"{mailbox.display_name} <{mailbox.address}> (yourself)"
    how = "as" if mailbox.kind is MailboxKind.FUNCTIONAL else "on behalf of"
    return f"{mailbox.display_name} <{mailbox.address}> ({how})"


def quoted_original(original: Message, mode: str) -> str:
    """The original below the new text: "> "-quoted for a reply, as it was for a forward."""
    text = original.body or ""
    if original.body_is_html:
        text = html_to_text(text)
    if mode != "forward":
        text = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    return f"\n\n{quote_header(original)}\n{text}\n"


def _content_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class ComposeScreen(MedScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(COMPOSE_ACTIONS)

    DEFAULT_CSS = """
    ComposeScreen #fields { height: auto; padding: 0 1; }
    ComposeScreen .row { height: 3; }
    ComposeScreen .row Label { width: 10; padding-top: 1; }
    ComposeScreen .row Input, ComposeScreen .row Select { width: 1fr; }
    ComposeScreen TextArea { height: 1fr; }
    ComposeScreen #extras { padding: 0 1; }
    ComposeScreen #extras Label { width: 10; padding-top: 1; }
    ComposeScreen #extras Input { width: 1fr; }
    ComposeScreen #draft-status { color: $text-muted; padding: 0 1; height: 1; }
    ComposeScreen #draft-status.-local { color: $warning; }
    """

    def __init__(self, draft: Draft, *, original: Item | None = None) -> None:
        super().__init__()
        self.draft = draft
        self.original = original
        self._autosave: Timer | None = None
        #: The content as opened, while nothing was typed yet (None: keep whatever is there).
        self._untouched: tuple[str, ...] | None = None
        self._server_save: Timer | None = None
        #: One server save or send at a time; a send waits for a save under way.
        self._server_lock = asyncio.Lock()
        self._sending = False
        self._sent = False
        #: What the server copy holds (or the text as opened): no request while it is unchanged.
        self._on_server: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        app = self.medapp
        senders = app.workspace.senders() or [
            Mailbox(app.workspace.user, app.workspace.user, MailboxKind.OWN)
        ]
        options = [(sender_label(m, app.workspace.user), m.address) for m in senders]
        if self.draft.sender not in [a for _, a in options]:
            self.draft.sender = options[0][1]
        with Vertical(id="fields"):
            with Horizontal(classes="row"):
                yield Label("From")
                yield Select(options, value=self.draft.sender, allow_blank=False, id="sender")
            for field_id, label, value in (
                ("to", "To", self.draft.to),
                ("cc", "Cc", self.draft.cc),
            ):
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(
                        value,
                        id=field_id,
                        suggester=AddressSuggester(app),
                        placeholder="name@example.org or a name, …" if field_id == "to" else "",
                    )
            with Horizontal(classes="row"):
                yield Label("Subject")
                yield Input(self.draft.subject, id="subject")
        yield TextArea(self.draft.body, id="body", soft_wrap=True)
        # After the text in the focus order (tab: To, Cc, Subject, text, Bcc, Attach).
        with Horizontal(classes="row", id="extras"):
            yield Label("Bcc")
            yield Input(self.draft.bcc, id="bcc", suggester=AddressSuggester(app))
            yield Label("Attach", id="attach-label")
            yield Input(
                self.draft.attachments, id="attachments", placeholder="file paths, ; between"
            )
        initial = (
            f"Draft in {self._drafts_owner()}'s Drafts."
            if self.draft.server_id
            else "Draft not saved yet."
        )
        yield Static(initial, id="draft-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = {
            "new": "New message",
            "reply": "Reply",
            "reply-all": "Reply to all",
            "forward": "Forward",
        }.get(self.draft.mode, "Message")
        self._on_server = self._content()
        # A new message or answer left as it opened is no draft: nothing is kept for it.
        kept = any(d.draft_id == self.draft.draft_id for d in self.medapp.drafts.all())
        self._untouched = None if kept or self.draft.server_id else self._content()
        target = "#body" if self.draft.mode in ("reply", "reply-all") or self.draft.to else "#to"
        self.query_one(target).focus()
        if self.draft.in_reply_to and not self.draft.quoted:
            self.quote_original(self.draft.in_reply_to)

    @work(exclusive=True, group="quote", exit_on_error=False)
    async def quote_original(self, item_id: str) -> None:
        """Put the answered or forwarded message below what is being written, visibly; it is
        sent as shown."""
        full = await self.medapp.session.get(item_id)
        if not isinstance(full, Message) or not self.is_mounted or self.draft.quoted:
            return
        self.original = full
        body = self.query_one("#body", TextArea)
        self._collect()
        untouched = self._left_untouched()
        # At the end; the cursor stays where the user is typing (above the quote).
        where = body.cursor_location
        body.load_text(body.text + quoted_original(full, self.draft.mode))
        body.move_cursor(where)
        self.draft.quoted = True
        self.draft.original_message_id = full.internet_message_id
        self._collect()
        if untouched:  # the quote is ours, not the user's: still nothing worth keeping
            self._untouched = self._content()

    # ------------------------------------------------------------------ draft

    def _collect(self) -> Draft:
        self.draft.sender = str(self.query_one("#sender", Select).value)
        self.draft.to = self.query_one("#to", Input).value
        self.draft.cc = self.query_one("#cc", Input).value
        self.draft.bcc = self.query_one("#bcc", Input).value
        self.draft.subject = self.query_one("#subject", Input).value
        self.draft.attachments = self.query_one("#attachments", Input).value
        self.draft.body = self.query_one("#body", TextArea).text
        return self.draft

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        if self.is_mounted:
            self._collect()  # the in-memory draft always matches the screen
        if self._autosave is not None:
            self._autosave.stop()
        self._autosave = self.set_timer(AUTOSAVE_DELAY_S, self.save_draft)
        if self._server_save is not None:
            self._server_save.stop()
        self._server_save = self.set_timer(SERVER_SAVE_DELAY_S, self.save_to_server)

    def save_draft(self) -> None:
        self._collect()
        if not self._left_untouched():
            self.medapp.drafts.save(self.draft)

    def _stop_timers(self) -> None:
        for timer in (self._autosave, self._server_save):
            if timer is not None:
                timer.stop()

    def _left_untouched(self) -> bool:
        return self._untouched is not None and self._content() == self._untouched

    def on_unmount(self) -> None:
        self._stop_timers()
        if self._sent:
            return
        if self._left_untouched():
            self.medapp.drafts.discard(self.draft.draft_id)
        else:
            self.medapp.drafts.save(self.draft)  # whatever ends the screen, the text is on disk

    def action_close(self) -> None:
        self._stop_timers()
        self._collect()
        if self._left_untouched():
            self.medapp.drafts.discard(self.draft.draft_id)
            self.dismiss(None)
            return
        self.save_draft()
        self.save_to_server(closing=True)
        self.dismiss(None)

    def _content(self) -> tuple[str, ...]:
        d = self.draft
        return (d.sender, d.to, d.cc, d.bcc, d.subject, d.body)

    def _drafts_owner(self) -> str:
        address = self.draft.server_mailbox or self.draft.sender
        mailbox = self.medapp.workspace.mailbox(address)
        return mailbox.display_name if mailbox is not None else address

    def save_to_server(self, *, closing: bool = False) -> None:
        """Save into the server's Drafts now; runs on the app so closing the screen keeps it."""
        if self.is_mounted:
            self._collect()
        if self._sent or self._sending or self._left_untouched():
            return
        self.medapp.run_worker(
            self._push(self._collect() if self.is_mounted else self.draft, closing),
            group="server-draft",
            exit_on_error=False,
        )

    async def _push(self, draft: Draft, closing: bool) -> None:
        app = self.medapp
        async with self._server_lock:
            content = (draft.sender, draft.to, draft.cc, draft.bcc, draft.subject, draft.body)
            if self._sent or self._sending or content == self._on_server:
                return
            try:
                await save_on_server(app.session, app.workspace.user, draft)
            except MedError as exc:
                app.drafts.save(draft)
                note = f"Draft saved on this computer only; {local_only_reason(exc)}."
                if closing:
                    app.notify(note, title="Draft kept locally", severity="warning")
                else:
                    self.post_message(msg.DraftStored(draft.draft_id, note, on_server=False))
                return
        self._on_server = content
        app.drafts.save(draft)  # remembers the server item, so the next save updates it
        note = f"Draft saved in {self._drafts_owner()}'s Drafts."
        if closing:
            app.notify(note)
        else:
            self.post_message(msg.DraftStored(draft.draft_id, note, on_server=True))

    def on_draft_stored(self, message: msg.DraftStored) -> None:
        if not self.is_mounted:
            return
        status = self.query_one("#draft-status", Static)
        at = self.medapp.now().strftime("%H:%M")
        status.update(f"{message.note} ({at})")
        status.set_class(not message.on_server, "-local")

    def action_cycle_sender(self) -> None:
        select = self.query_one("#sender", Select)
        values = [value for _, value in select._options if value is not Select.BLANK]
        if values:
            current = values.index(select.value) if select.value in values else -1
            select.value = values[(current + 1) % len(values)]

    # ------------------------------------------------------------------ $EDITOR

    def action_external_editor(self) -> None:
        body = self.query_one("#body", TextArea)
        try:
            argv = editor_command(self.medapp.config.editor)
        except EditorMissing as exc:
            self.notify(str(exc), severity="warning")
            body.focus()
            return
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
            fh.write(body.text)
        path = Path(fh.name)
        try:
            with self.app.suspend():
                # The user's own editor setting ($VISUAL/$EDITOR or [tui] editor).
                subprocess.run([*argv, str(path)], check=False)  # noqa: S603
            body.load_text(path.read_text(encoding="utf-8"))
            self.save_draft()
        except Exception as exc:
            self.notify(
                f"The editor could not run here ({exc}); keep writing in place.", severity="warning"
            )
        finally:
            path.unlink(missing_ok=True)
            self.app.refresh(repaint=True)

    # ------------------------------------------------------------------ review and send

    def action_review(self) -> None:
        draft = self._collect()
        self.medapp.drafts.save(draft)
        if not parse_addresses(",".join((draft.to, draft.cc, draft.bcc))):
            self.notify("Add at least one recipient.", severity="warning")
            self.query_one("#to").focus()
            return
        missing = [str(p) for p in draft.attachment_paths() if not p.is_file()]
        if missing:
            self.notify(f"No such file to attach: {', '.join(missing)}", severity="warning")
            self.query_one("#attachments").focus()
            return

        def confirmed(send: bool | None) -> None:
            if send:
                self._stop_timers()
                self._sending = True
                self.send(draft)

        self.app.push_screen(ReviewScreen(draft, self.original), confirmed)

    @work(exclusive=True, group="send", exit_on_error=False)
    async def send(self, draft: Draft) -> None:
        try:
            async with self._server_lock:  # a server save under way finishes first
                await self._send(draft)
        except BaseException:
            self._sending = False
            raise

    async def _send(self, draft: Draft) -> None:
        session = self.medapp.session
        user = self.medapp.workspace.user
        options = SendOptions(from_mailbox=None if draft.sender == user else draft.sender)
        files = [
            OutgoingAttachment(path.name, path.read_bytes(), _content_type(path))
            for path in draft.attachment_paths()
        ]
        if draft.mode == "forward" and draft.in_reply_to:
            # What the server would carry along on a forward: the original's attachments.
            original = await session.get(draft.in_reply_to)
            for att in original.attachments:
                content = await session.attachment(att)
                files.append(
                    OutgoingAttachment(att.name, content.content, att.content_type, att.is_inline)
                )
        # Replies and forwards go out as written here: recipients, subject and the quoted
        # original are what the screen showed.
        message = Message(
            subject=draft.subject,
            body=draft.body,
            to=parse_addresses(draft.to),
            cc=parse_addresses(draft.cc),
            bcc=parse_addresses(draft.bcc),
            new_attachments=tuple(files),
            in_reply_to=draft.original_message_id,
        )
        await session.send(message, options)
        who = "" if options.from_mailbox is None else f" on behalf of {options.from_mailbox}"
        summary = f"Sent{who}." + await self._mark_answered(draft)
        if draft.server_id is not None:
            try:
                await session.delete(draft.server_id, hard=True)
            except NotFound:
                pass  # already gone (deleted in Outlook, say)
            except MedError as exc:
                summary += f" The copy in Drafts stays: {exc}"
        self.post_message(msg.MailSent(draft.draft_id, summary))

    async def _mark_answered(self, draft: Draft) -> str:
        """Mark the original replied or forwarded, as Outlook does once its answer is sent
        (the answer went out as an ordinary message, so the server does not)."""
        verb = _VERB_OF_MODE.get(draft.mode)
        if verb is None or draft.in_reply_to is None:
            return ""
        session = self.medapp.session
        try:
            original = await session.get(draft.in_reply_to)
            if isinstance(original, Message):
                await session.update(dataclasses.replace(original, last_verb=verb), ["last_verb"])
        except MedError as exc:
            return f" The original is not marked as answered: {exc}"
        return ""

    def on_mail_sent(self, message: msg.MailSent) -> None:
        self._sent = True
        self.medapp.drafts.discard(message.draft_id)
        self.notify(message.summary)
        self.dismiss(None)


class ReviewScreen(MedModal[bool]):
    """Everything that will go out, once more, before it goes."""

    DEFAULT_CSS = """
    ReviewScreen { align: center middle; }
    ReviewScreen > Vertical {
        width: 84; height: 80%; border: thick $accent; background: $surface; padding: 1 2;
    }
    ReviewScreen VerticalScroll { height: 1fr; border: round $panel-lighten-2; }
    ReviewScreen Horizontal { height: auto; margin-top: 1; }
    ReviewScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Send", id="review-confirm"),
        Binding("n,escape", "answer(False)", "Back"),
    ]

    def __init__(self, draft: Draft, original: Item | None) -> None:
        super().__init__()
        self.draft = draft
        self.original = original

    def compose(self) -> ComposeResult:
        ws = self.medapp.workspace
        d = self.draft
        sender = ws.mailbox(d.sender)
        if d.sender == ws.user:
            from_line = f"From: {d.sender} (yourself)"
        elif sender is not None and sender.kind is MailboxKind.FUNCTIONAL:
            from_line = f"From: {sender.display_name} <{d.sender}> (as the functional mailbox)"
        else:
            name = sender.display_name if sender else d.sender
            from_line = f"From: {name} <{d.sender}>, sent by {ws.user} on behalf"
        lines = [from_line]
        if d.mode in ("reply", "reply-all", "forward") and isinstance(self.original, Message):
            what = {"reply": "Reply", "reply-all": "Reply to all", "forward": "Forward"}[d.mode]
            lines.append(f"{what} of: {self.original.from_ or ''} — “{self.original.subject}”")
        lines.append(f"To: {d.to}")
        if d.cc:
            lines.append(f"Cc: {d.cc}")
        if d.bcc:
            lines.append(f"Bcc: {d.bcc}")
        lines.append(f"Subject: {d.subject}")
        for path in d.attachment_paths():
            lines.append(f"Attachment: {path.name}")
        with Vertical():
            yield Label("[b]Review before sending[/b]")
            yield Static("\n".join(lines), id="review-head", markup=False)
            recipients = parse_addresses(",".join((d.to, d.cc, d.bcc)))
            emails = [a.email for a in recipients if "@" in a.email]
            yield MailTipsPanel(self.medapp.session, d.sender, emails, id="review-tips")
            with VerticalScroll():
                yield Static(d.body or "(empty message)", id="review-body", markup=False)
            with Horizontal():
                yield Button("Send (y)", id="send", variant="primary")
                yield Button("Back to editing (n)", id="back")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "send")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
