"""Small modal dialogs: confirm, prompt for a value, choose one of several."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

T = TypeVar("T")

DIALOG_CSS = """
{name} { align: center middle; }
{name} > Vertical {
    width: 64; height: auto; max-height: 80%;
    border: thick $accent; background: $surface; padding: 1 2;
}
{name} Horizontal { height: auto; margin-top: 1; }
{name} Button { margin-right: 2; }
{name} Label { width: 100%; }  /* wraps: a long question or reason is read whole */
{name} .error { color: $error; }
"""


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no; `y` confirms, `n` or escape cancels."""

    DEFAULT_CSS = DIALOG_CSS.replace("{name}", "ConfirmScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class PromptScreen(ModalScreen[T | None], Generic[T]):
    """Ask for one value; `parse` turns the text into it or raises ValueError with a sentence."""

    DEFAULT_CSS = DIALOG_CSS.replace("{name}", "PromptScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        question: str,
        parse: Callable[[str], T],
        *,
        value: str = "",
        placeholder: str = "",
        password: bool = False,
        error: str = "",
    ) -> None:
        """`value` and `error`: asked again after the value was refused later (by a server),
        with what was typed and why."""
        super().__init__()
        self.question = question
        self.parse = parse
        self.value = value
        self.placeholder = placeholder
        self.password = password
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(
                self.value, placeholder=self.placeholder, password=self.password, id="prompt-input"
            )
            yield Label(self.error, classes="error", id="prompt-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            result = self.parse(event.value)
        except ValueError as exc:
            self.query_one("#prompt-error", Label).update(str(exc))
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[T | None], Generic[T]):
    """Pick one entry from a list (folders to move to, calendars, responses)."""

    DEFAULT_CSS = (
        DIALOG_CSS.replace("{name}", "ChoiceScreen")
        + """
    ChoiceScreen OptionList { height: auto; max-height: 20; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("d,delete", "remove_choice", "Discard", show=False),
    ]

    def __init__(
        self,
        title: str,
        choices: Sequence[tuple[str, T]],
        *,
        remove: Callable[[T], bool] | None = None,
        remove_hint: str = "",
        remove_question: Callable[[T], str | None] | None = None,
    ) -> None:
        """`remove(value)` (bound to d and Delete) drops a choice when it returns True; with
        `remove_question`, only after a yes to the question it gives (None: no question)."""
        super().__init__()
        self.title_text = title
        self.choices = list(choices)
        self.on_remove = remove
        self.remove_hint = remove_hint
        self.remove_question = remove_question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield OptionList(
                *[Option(label, id=str(i)) for i, (label, _) in enumerate(self.choices)],
                id="choices",
            )
            if self.on_remove is not None and self.remove_hint:
                yield Label(self.remove_hint, classes="hint")

    def action_remove_choice(self) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if self.on_remove is None or index is None:
            return
        option = options.get_option_at_index(index)
        value = self.choices[int(option.id or 0)][1]
        remove = self.on_remove
        question = self.remove_question(value) if self.remove_question else None
        if question is None:
            if remove(value):
                options.remove_option_at_index(index)
            return

        def answered(yes: bool | None) -> None:
            if yes and remove(value):
                options.remove_option_at_index(options.get_option_index(option.id or ""))

        self.app.push_screen(ConfirmScreen(question, yes="Discard"), answered)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        index = int(event.option.id or 0)
        self.dismiss(self.choices[index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)
