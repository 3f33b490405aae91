"""`LogScreen`: the board's live change stream, newest first, pausable and searchable.

Shows the app's `LogWindow` (the last changes before the TUI started and everything since).
Space pauses (arriving changes are held and counted) and resumes; / searches the window
(key, kind, writer, activation, value); o loads older changes from the log; enter opens the
entry of the highlighted change. Imports textual, the TUI's feed and widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from blackboard.store.entry import Change
from blackboard.tui.widgets.row_table import Column, RowTable

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["LogScreen"]

COLUMNS = [
    Column("rev", 8, right=True),
    Column("age", 5, right=True),
    Column("kind", 7),
    Column("key"),
    Column("ver", 5, right=True),
    Column("writer", 16),
    Column("value"),
]


class LogScreen(Screen[None]):
    """The change log, live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause", "Pause/resume"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("o", "older", "Older"),
        Binding("enter", "open", "Open entry"),
        Binding("escape", "clear", "Clear search", show=False),
    ]
    DEFAULT_CSS = """
    LogScreen #search { height: 1; border: none; padding: 0 1; display: none; }
    LogScreen #search.shown { display: block; }
    """

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield Input(placeholder="search key, writer, kind, value… (enter)", id="search")
        yield RowTable(COLUMNS, id="log", placeholder="")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(RowTable)
        table.set_source(self.board_app.log_window)
        table.focus()
        self.board_app.changes.subscribe(self, self._on_changes)
        self._show_status()

    def on_screen_resume(self) -> None:
        self.query_one(RowTable).refresh_rows()
        self._show_status()

    def _on_changes(self, batch: list[Change]) -> None:
        if not self.board_app.log_window.paused:
            table = self.query_one(RowTable)
            if table.cursor > 0:  # keep the highlighted change under the cursor
                shown = [c for c in batch if self._shown(c)]
                table.cursor += len(shown)
            table.refresh_rows()
        self._show_status()

    def _shown(self, c: Change) -> bool:
        q = self.board_app.log_window.query
        if not q:
            return True
        from blackboard.tui.display import change_text

        return q in change_text(c)

    def _show_status(self) -> None:
        w = self.board_app.log_window
        parts = [f"{len(w):,} changes"]
        if w.query:
            parts.append(f"search {w.query!r}")
        if w.paused:
            parts.append(f"PAUSED · {w.held:,} new held (space resumes)")
        else:
            parts.append("following")
        line = self.board_app.status_line("log", " · ".join(parts))
        self.query_one("#status", Static).update(Text(line))

    # -- actions -----------------------------------------------------------------------------

    def action_pause(self) -> None:
        w = self.board_app.log_window
        if w.paused:
            w.resume()
        else:
            w.pause()
        self.query_one(RowTable).refresh_rows()
        self._show_status()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.board_app.log_window.search(event.value)
        table = self.query_one(RowTable)
        table.cursor = 0
        table.refresh_rows()
        table.focus()
        self._show_status()

    def action_clear(self) -> None:
        box = self.query_one("#search", Input)
        box.value = ""
        box.remove_class("shown")
        self.board_app.log_window.search("")
        table = self.query_one(RowTable)
        table.refresh_rows()
        table.focus()
        self._show_status()

    def action_older(self) -> None:
        app = self.board_app
        oldest = app.log_window.oldest_revision

        async def load() -> None:
            older = await app.reader.log_tail(1000, before=oldest)
            n = app.log_window.prepend(older)
            self.query_one(RowTable).refresh_rows()
            self._show_status()
            self.notify(f"{n} older changes loaded" if n else "no older changes kept")

        app.run_io(load, name="log-older", exclusive=True)

    def action_open(self) -> None:
        from blackboard.tui.screens.entry_screen import EntryScreen

        c = self.board_app.log_window.change_at(self.query_one(RowTable).cursor)
        if c is not None:
            self.app.push_screen(EntryScreen(c.key))

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        self.action_open()
