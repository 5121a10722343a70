"""Mail tips on the review screen: what the server says about the recipients before sending
(out of office with their reply, outside the organisation, large audiences, moderated lists).

The check runs in a worker when the panel appears; until it answers the panel says so, and a
server that cannot give tips (or fails) leaves a quiet line: sending never waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.message import Message
from textual.widgets import Static

from med import DelegateSession, MedError, Unsupported


class MailTipsPanel(Static):
    """Warnings about the recipients of one message, filled in once the server answered."""

    DEFAULT_CSS = """
    MailTipsPanel { height: auto; margin-top: 1; color: $text-muted; }
    MailTipsPanel.-warning { color: $warning; border-left: thick $warning; padding-left: 1; }
    """

    @dataclass
    class Checked(Message):
        """The server's tips arrived, as sentences (empty: nothing to warn about)."""

        warnings: list[str]
        note: str = ""

    def __init__(
        self,
        session: DelegateSession,
        sending_as: str,
        recipients: list[str],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__("Checking recipients…", markup=False, id=id)
        self.session = session
        self.sending_as = sending_as
        self.recipients = recipients
        #: The warnings shown (for tests and screen readers), once the check is done.
        self.warnings: list[str] | None = None

    def on_mount(self) -> None:
        if self.recipients:
            self.check()
        else:
            self.update("")

    @work(exclusive=True, group="mailtips", exit_on_error=False)
    async def check(self) -> None:
        try:
            tips = await self.session.mail_tips(self.recipients, sending_as=self.sending_as)
        except Unsupported:
            self.post_message(self.Checked([], ""))
            return
        except MedError as exc:
            self.post_message(self.Checked([], f"Recipients not checked: {exc}"))
            return
        self.post_message(self.Checked([w for t in tips for w in t.warnings()]))

    def on_mail_tips_panel_checked(self, message: MailTipsPanel.Checked) -> None:
        message.stop()
        self.warnings = message.warnings
        if message.warnings:
            self.add_class("-warning")
            self.update("\n".join(f"⚠ {w}" for w in message.warnings))
        else:
            self.update(message.note)
