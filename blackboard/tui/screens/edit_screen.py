"""`EditScreen`: a modal JSON editor for the value a human writes instead of an escalated one.

Ctrl+S parses the text as JSON and closes with ``(value,)``; a parse error is shown and the
editor stays open. Escape closes with None (nothing is written). Imports textual only.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea

__all__ = ["EditScreen"]


class EditScreen(ModalScreen[tuple[Any] | None]):
    """Edit a value as JSON."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Write", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]
    DEFAULT_CSS = """
    EditScreen { align: center middle; }
    EditScreen > Vertical { width: 80%; height: 80%; border: thick $accent; background: $surface; }
    EditScreen #title { height: 1; padding: 0 1; text-style: bold; }
    EditScreen #error { height: auto; color: $error; padding: 0 1; }
    EditScreen TextArea { height: 1fr; }
    """

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text), id="title")
            yield TextArea(self.text, language=None, id="editor")
            yield Static(id="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        source = self.query_one(TextArea).text
        try:
            value = json.loads(source)
        except json.JSONDecodeError as exc:
            self.query_one("#error", Static).update(Text(f"not valid JSON: {exc}"))
            return
        self.dismiss((value,))

    def action_cancel(self) -> None:
        self.dismiss(None)
