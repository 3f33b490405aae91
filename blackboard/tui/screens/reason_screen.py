"""`ReasonScreen`: a modal confirmation that also asks why, for an operator's action that
stops or drops work (pause, drain, open a breaker, cancel an activation).

Enter (or the Yes button) confirms and closes with the reason typed (possibly empty), which
goes on the record with the action; escape (or No) closes with None and nothing happens.
Imports textual only.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

__all__ = ["ReasonScreen"]


class ReasonScreen(ModalScreen[str | None]):
    """Ask before a destructive action, with a reason for the record."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", priority=True),
    ]
    DEFAULT_CSS = """
    ReasonScreen { align: center middle; }
    ReasonScreen > Vertical {
        width: 76; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    ReasonScreen Input { margin: 1 0 0 0; }
    ReasonScreen Horizontal { height: auto; }
    ReasonScreen Button { margin: 1 1 0 0; }
    """

    def __init__(self, question: str, placeholder: str = "reason (kept on the record)") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question))
            yield Input(placeholder=self.placeholder, id="reason")
            with Horizontal():
                yield Button("Yes (enter)", id="yes", variant="warning")
                yield Button("No (escape)", id="no")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self.dismiss(self.query_one(Input).value.strip())
        else:
            self.dismiss(None)
