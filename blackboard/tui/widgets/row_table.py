"""`RowTable`: a virtualized table that draws only the rows on screen (Textual Line API).

The rows come from a `RowSource`, which may not have them yet: a missing row draws as a
placeholder and the table posts `RowsWanted` for the range on screen, so the screen can read
that page and call `refresh_rows()`. The table itself holds nothing but a cursor, which makes
a million rows cost the same as ten. Keys: arrows, page up/down, home/end, enter; the mouse
selects a row (double click opens it) and scrolls. Imports textual and rich only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["Column", "RowSource", "RowTable"]


@dataclass(frozen=True, slots=True)
class Column:
    """A column: `width` cells, or 0 to share what the fixed columns leave."""

    title: str
    width: int = 0
    right: bool = False


class RowSource(Protocol):
    """What a RowTable shows: a row count and the cells of row i (None: not loaded yet)."""

    def __len__(self) -> int: ...

    def cells(self, i: int) -> Sequence[str] | None: ...


class _Empty:
    def __len__(self) -> int:
        return 0

    def cells(self, i: int) -> Sequence[str] | None:
        return None


def _fit(text: str, width: int, right: bool) -> str:
    text = text.replace("\n", " ")
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 0 else ""
    return text.rjust(width) if right else text.ljust(width)


class RowTable(ScrollView, can_focus=True):
    """A table over a RowSource with a row cursor; only visible rows are drawn."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "row-table--header",
        "row-table--cursor",
        "row-table--placeholder",
    }
    DEFAULT_CSS = """
    RowTable {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: scroll;
        background: $surface;
    }
    RowTable > .row-table--header { text-style: bold; background: $panel; }
    RowTable > .row-table--cursor { background: $secondary 30%; }
    RowTable:focus > .row-table--cursor { background: $accent; color: $text; }
    RowTable > .row-table--placeholder { color: $text-muted; }
    """

    cursor: Reactive[int] = Reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved to `row`."""

        def __init__(self, table: RowTable, row: int) -> None:
            self.table = table
            self.row = row
            super().__init__()

    class Selected(Message):
        """Enter or a double click on `row`."""

        def __init__(self, table: RowTable, row: int) -> None:
            self.table = table
            self.row = row
            super().__init__()

    class RowsWanted(Message):
        """Rows [first, end) are on screen but not loaded."""

        def __init__(self, table: RowTable, first: int, end: int) -> None:
            self.table = table
            self.first = first
            self.end = end
            super().__init__()

    def __init__(
        self,
        columns: Sequence[Column],
        source: RowSource | None = None,
        *,
        placeholder: str = "…",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = list(columns)
        self.source: RowSource = source or _Empty()
        self.placeholder = placeholder
        self._wanted: tuple[int, int] | None = None

    # -- data --------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.source)

    def set_source(self, source: RowSource) -> None:
        self.source = source
        self.refresh_rows()

    def refresh_rows(self) -> None:
        """The source changed: resize, keep the cursor in range, redraw."""
        n = self.row_count
        self.virtual_size = Size(0, n + 1)
        if self.cursor >= n:
            self.cursor = max(0, n - 1)
        self.refresh()

    # -- geometry ----------------------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    @property
    def first_visible(self) -> int:
        return int(self.scroll_y)

    def _widths(self, total: int) -> list[int]:
        fixed = sum(c.width for c in self.columns if c.width) + len(self.columns) - 1
        flex = [c for c in self.columns if not c.width]
        share = max(4, (total - fixed) // len(flex)) if flex else 0
        return [c.width or share for c in self.columns]

    def _line(self, cells: Sequence[str], width: int) -> str:
        parts = [
            _fit(cell, w, col.right)
            for cell, w, col in zip(cells, self._widths(width), self.columns, strict=False)
        ]
        return " ".join(parts)[:width].ljust(width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_rich_style("row-table--header")
            return self._strip(self._line([c.title for c in self.columns], width), style)
        row = self.first_visible + y - 1
        base = self.rich_style
        if row >= self.row_count:
            return Strip.blank(width, base)
        cells = self.source.cells(row)
        if cells is None:
            self._want(row)
            text = self._line([self.placeholder], width)
            style = self.get_component_rich_style("row-table--placeholder")
        else:
            text = self._line(cells, width)
            style = base
        if row == self.cursor:
            style = style + self.get_component_rich_style("row-table--cursor")
        return self._strip(text, style)

    def _strip(self, text: str, style: Style) -> Strip:
        t = Text(text, style=style, no_wrap=True, end="")
        return Strip(t.render(self.app.console), len(text))

    def _want(self, row: int) -> None:
        first = self.first_visible
        start, stop = first, first + self.page_rows
        if self._wanted is None:
            self._wanted = (start, stop)
            self.call_after_refresh(self._ask)
        elif row < self._wanted[0] or row >= self._wanted[1]:
            self._wanted = (min(start, self._wanted[0]), max(stop, self._wanted[1]))

    def _ask(self) -> None:
        if self._wanted is not None:
            start, stop = self._wanted
            self._wanted = None
            self.post_message(self.RowsWanted(self, start, stop))

    # -- cursor ------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self.row_count - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        if self.row_count:
            self.post_message(self.Highlighted(self, new))

    def _scroll_to_cursor(self) -> None:
        top = self.first_visible
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor > top + self.page_rows - 1:
            self.scroll_to(y=self.cursor - self.page_rows + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, pages: int) -> None:
        self.cursor += pages * self.page_rows
        self.scroll_to(y=self.scroll_y + pages * self.page_rows, animate=False, immediate=True)
        self._scroll_to_cursor()

    def action_jump(self, row: int) -> None:
        self.cursor = row if row >= 0 else self.row_count - 1

    def action_select(self) -> None:
        if self.row_count:
            self.post_message(self.Selected(self, self.cursor))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        row = self.first_visible + event.y - 1
        if row < self.row_count:
            self.cursor = row
            if event.chain >= 2:
                self.post_message(self.Selected(self, row))

    def on_resize(self, event: events.Resize) -> None:
        self.refresh_rows()
