"""`FilterBar`: the entry table's filter: key pattern, schema, writer, divergent only.

Enter in any field (or toggling the checkbox) posts `FilterBar.Changed` with a new
`EntryFilter`; a pattern the board refuses posts `FilterBar.Invalid` instead. Imports textual
and the TUI's pager (for `EntryFilter`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Checkbox, Input, Label

from blackboard.errors import InvalidKeyError
from blackboard.tui.pager import EntryFilter

__all__ = ["FilterBar"]


class FilterBar(Horizontal):
    """One line of filter fields above the entry table."""

    DEFAULT_CSS = """
    FilterBar { height: 1; background: $panel; }
    FilterBar Label { padding: 0 1; color: $text-muted; }
    FilterBar Input { border: none; height: 1; padding: 0 1; background: $surface; }
    FilterBar Input:focus { background: $boost; }
    FilterBar #pattern { width: 2fr; }
    FilterBar #schema, FilterBar #writer { width: 1fr; }
    FilterBar Checkbox { border: none; height: 1; padding: 0 1; background: $panel; }
    """

    class Changed(Message):
        """The user asked for `filter`."""

        def __init__(self, bar: FilterBar, filter: EntryFilter) -> None:
            self.bar = bar
            self.filter = filter
            super().__init__()

    class Invalid(Message):
        """The fields do not make a filter (`reason` says why)."""

        def __init__(self, bar: FilterBar, reason: str) -> None:
            self.bar = bar
            self.reason = reason
            super().__init__()

    def compose(self) -> ComposeResult:
        yield Label("keys")
        yield Input(value="*", placeholder="pattern, e.g. ticket/*", id="pattern")
        yield Label("schema")
        yield Input(placeholder="any", id="schema")
        yield Label("writer")
        yield Input(placeholder="any", id="writer")
        yield Checkbox("divergent only", id="divergent")

    def current(self) -> EntryFilter:
        """The filter the fields describe. Raises InvalidKeyError for a bad pattern."""
        pattern = self.query_one("#pattern", Input).value.strip() or "*"
        return EntryFilter(
            pattern=pattern,
            schema=self.query_one("#schema", Input).value.strip(),
            writer=self.query_one("#writer", Input).value.strip(),
            divergent=self.query_one("#divergent", Checkbox).value,
        )

    def set_filter(self, f: EntryFilter) -> None:
        self.query_one("#pattern", Input).value = f.pattern
        self.query_one("#schema", Input).value = f.schema
        self.query_one("#writer", Input).value = f.writer
        with self.prevent(Checkbox.Changed):
            self.query_one("#divergent", Checkbox).value = f.divergent

    def _post(self) -> None:
        try:
            f = self.current()
        except InvalidKeyError as exc:
            self.post_message(self.Invalid(self, exc.reason))
            return
        self.post_message(self.Changed(self, f))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._post()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._post()

    def focus_pattern(self) -> None:
        self.query_one("#pattern", Input).focus()
