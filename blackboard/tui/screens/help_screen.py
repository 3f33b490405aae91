"""`HelpScreen`: every key of the TUI, by view, drawn from the bindings themselves so it
cannot drift from what the keys do; the keys of the view it was opened from come first.
Escape, q or ? closes it. Imports textual and the TUI's screens (for their bindings).
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from blackboard.tui.screens.activations_screen import ActivationsScreen
from blackboard.tui.screens.agenda_screen import AgendaScreen
from blackboard.tui.screens.agents_screen import AgentsScreen
from blackboard.tui.screens.entries_screen import EntriesScreen
from blackboard.tui.screens.entry_screen import EntryScreen
from blackboard.tui.screens.escalations_screen import EscalationsScreen
from blackboard.tui.screens.log_screen import LogScreen
from blackboard.tui.widgets.row_table import RowTable

__all__ = ["HelpScreen", "help_sections"]


def _keys(bindings: list[BindingType]) -> list[tuple[str, str]]:
    out = []
    for b in bindings:
        if isinstance(b, Binding):
            keys = b.key_display or ", ".join(k.strip() for k in b.key.split(","))
            out.append((keys, b.description or b.action))
    return out


def help_sections(app_bindings: list[BindingType]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(view, [(keys, what)]) for every view, the global keys (`app_bindings`, the app's
    own) first."""
    return [
        ("everywhere", _keys(app_bindings)),
        ("tables", [*_keys(RowTable.BINDINGS), ("mouse", "click selects, double click opens")]),
        ("entries", _keys(EntriesScreen.BINDINGS)),
        ("entry", _keys(EntryScreen.BINDINGS)),
        ("log", _keys(LogScreen.BINDINGS)),
        ("agents", _keys(AgentsScreen.BINDINGS)),
        ("agenda", _keys(AgendaScreen.BINDINGS)),
        ("escalations", _keys(EscalationsScreen.BINDINGS)),
        ("activations", _keys(ActivationsScreen.BINDINGS)),
    ]


class HelpScreen(ModalScreen[None]):
    """The key reference."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", priority=True),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, view: str = "entries", under: Screen[object] | None = None) -> None:
        super().__init__()
        self.view = view
        self.under = under

    def compose(self) -> ComposeResult:
        sections = help_sections(list(self.app.BINDINGS))
        here = type(self.under).__name__.removesuffix("Screen").lower() if self.under else ""
        first = here if here in {name for name, _ in sections} else self.view
        sections.sort(key=lambda s: (s[0] != first, s[0] != "everywhere"))
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column("keys", style="bold", no_wrap=True)
        table.add_column("what")
        for name, keys in sections:
            table.add_row(Text(name, style="bold underline"), "")
            for k, what in keys:
                table.add_row(k, what)
            table.add_row("", "")
        with VerticalScroll():
            yield Static(Text("blackboard tui — keys (escape closes)", style="bold"))
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
