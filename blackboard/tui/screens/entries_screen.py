"""`EntriesScreen`: the board's entries in a virtualized, filterable, live table.

Rows come from the app's `EntryPager`: only the rows on screen are read, a prefix pattern is
counted and paged by rank in the index, other filters scan the index a chunk at a time in
the background, and the change log keeps the rows current. Enter opens an entry's detail.
Imports textual, the TUI's pager, display and widgets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from blackboard.store.entry import Change
from blackboard.tui.display import age, preview
from blackboard.tui.pager import EntryFilter, EntryPager
from blackboard.tui.widgets.filter_bar import FilterBar
from blackboard.tui.widgets.row_table import Column, RowTable

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["EntriesScreen", "EntryRows"]

COLUMNS = [
    Column("key"),
    Column("ver", 5, right=True),
    Column("rev", 8, right=True),
    Column("writer", 16),
    Column("schema", 10),
    Column("age", 5, right=True),
    Column("value"),
]


class EntryRows:
    """The pager's rows as table cells (a RowSource)."""

    def __init__(self, pager: EntryPager, app: BoardApp) -> None:
        self.pager = pager
        self.app = app

    def __len__(self) -> int:
        return len(self.pager)

    def cells(self, i: int) -> Sequence[str] | None:
        key = self.pager.key_at(i)
        if key is None or not self.pager.has_row(i):
            return None
        row = self.pager.row_at(i)
        if row is None:
            return (key, "", "", "", "", "", "(gone)")
        if row.error:
            return (key, str(row.version or ""), "", "", "", "", f"(unreadable: {row.error})")
        return (
            key,
            str(row.version),
            str(row.revision),
            row.writer,
            row.schema or "",
            age(self.app.clock() * 1000 - row.time_ms),
            preview(row.value, 300, deleted=row.deleted),
        )


class EntriesScreen(Screen[None]):
    """The entry table with its filter bar."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("d", "divergent", "Divergent only"),
        Binding("c", "clear", "Clear filter"),
        Binding("enter", "open", "Open", show=True),
        Binding("R", "reload", "Reload"),
        Binding("escape", "table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._scan: asyncio.Task[None] | None = None

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield FilterBar()
        yield RowTable(COLUMNS, id="entries")
        yield Footer()

    def on_mount(self) -> None:
        app = self.board_app
        table = self.query_one(RowTable)
        table.set_source(EntryRows(app.pager, app))
        table.focus()
        app.changes.subscribe(self, self._on_changes)
        self.query_one(FilterBar).set_filter(app.pager.filter)
        self._start_scan()
        self._show_status()

    def on_screen_resume(self) -> None:
        self.query_one(RowTable).refresh_rows()
        self._show_status()

    def _show_status(self) -> None:
        app = self.board_app
        pager = app.pager
        n = len(pager)
        what = f"{n:,} entries" if pager.ranked else f"{n:,} matched"
        if not pager.scan_done:
            what += f" · scanning {pager.scanned:,}/{pager.candidates:,}"
        self.query_one("#status", Static).update(
            Text(app.status_line("entries", f"{pager.filter.describe()} · {what}"))
        )

    def _on_changes(self, batch: list[Change]) -> None:
        self.query_one(RowTable).refresh_rows()
        self._show_status()

    # -- loading -----------------------------------------------------------------------------

    def on_row_table_rows_wanted(self, event: RowTable.RowsWanted) -> None:
        pager = self.board_app.pager

        async def load() -> None:
            if await pager.load(event.first, event.end):
                self.query_one(RowTable).refresh_rows()

        self.board_app.run_io(load, name="entries-load")

    def _start_scan(self) -> None:
        pager = self.board_app.pager
        if pager.scan_done:
            return

        generation = pager.generation

        async def scan() -> None:
            table = self.query_one(RowTable)
            # reading rows costs CPU to decode: smaller steps keep the keys responsive, and
            # the table and status redraw at most ten times a second while the scan runs
            budget = 500 if pager.filter.row_filtered else 2000
            drawn = 0.0
            while pager.generation == generation and await pager.scan_step(budget):
                if time.monotonic() - drawn >= 0.1:
                    table.refresh_rows()
                    self._show_status()
                    drawn = time.monotonic()
                await asyncio.sleep(0)
            table.refresh_rows()
            self._show_status()

        self.board_app.run_io(scan, name="entries-scan", exclusive=True)

    async def apply_filter(self, f: EntryFilter) -> None:
        """Show the entries matching `f` (a fresh count or scan)."""
        app = self.board_app
        await app.pager.reset(f)
        table = self.query_one(RowTable)
        table.cursor = 0
        table.scroll_to(y=0, animate=False, immediate=True)
        table.refresh_rows()
        self._start_scan()
        self._show_status()

    async def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        await self.apply_filter(event.filter)
        self.query_one(RowTable).focus()

    def on_filter_bar_invalid(self, event: FilterBar.Invalid) -> None:
        self.notify(f"filter: {event.reason}", severity="error")

    # -- actions -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).focus_pattern()

    def action_table(self) -> None:
        self.query_one(RowTable).focus()

    async def action_divergent(self) -> None:
        f = self.board_app.pager.filter
        new = EntryFilter(f.pattern, f.schema, f.writer, not f.divergent)
        self.query_one(FilterBar).set_filter(new)
        await self.apply_filter(new)

    async def action_clear(self) -> None:
        self.query_one(FilterBar).set_filter(EntryFilter())
        await self.apply_filter(EntryFilter())

    async def action_reload(self) -> None:
        await self.apply_filter(self.board_app.pager.filter)

    def action_open(self) -> None:
        self._open(self.query_one(RowTable).cursor)

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        self._open(event.row)

    def _open(self, row: int) -> None:
        from blackboard.tui.screens.entry_screen import EntryScreen

        key = self.board_app.pager.key_at(row)
        if key is not None:
            self.app.push_screen(EntryScreen(key))
