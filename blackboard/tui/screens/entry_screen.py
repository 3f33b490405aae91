"""`EntryScreen`: one entry in depth: its versions, a diff between any two, its open
proposals, and its causation (the activation that wrote it, the change that triggered that
activation, and the controller's latest decisions about the entry).

Reloads when the log shows a change to the entry. Keys: a / b mark the highlighted version as
the left / right side of the diff; e edits the value (JSON) and x deletes the entry (after a
confirmation), each written as ``human:<user>`` with compare-and-set on the
version this screen showed when the key was pressed, so a stale screen gets a conflict and
writes nothing; escape goes back. Imports textual, the TUI's read model, operator desk and
display.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from blackboard.errors import BlackboardError, ConflictError
from blackboard.store.entry import Change, Entry
from blackboard.tui.display import age, clock_time, diff_lines, pretty, preview
from blackboard.tui.model import EntryDetail

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["EntryScreen"]


def _diff_text(lines: list[str]) -> Text:
    out = Text()
    for line in lines:
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        out.append(line + "\n", style=style)
    return out


class EntryScreen(Screen[None]):
    """Versions, diff, proposals and causation of one entry."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "mark('a')", "Diff left"),
        Binding("b", "mark('b')", "Diff right"),
        Binding("e", "edit", "Edit value"),
        Binding("x", "delete", "Delete"),
        Binding("R", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    EntryScreen #versions { height: 12; }
    EntryScreen #middle { height: 1fr; }
    EntryScreen #diff-box { width: 1fr; border: round $primary; }
    EntryScreen #causation-box { width: 1fr; border: round $primary; }
    EntryScreen #proposals { height: 8; }
    """

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.detail: EntryDetail | None = None
        self.left: int | None = None
        self.right: int | None = None

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield DataTable(id="versions", cursor_type="row")
        with Horizontal(id="middle"):
            with VerticalScroll(id="diff-box"):
                yield Static(id="diff")
            with VerticalScroll(id="causation-box"):
                yield Static(id="causation")
        yield DataTable(id="proposals", cursor_type="row")
        yield Static(id="message", classes="message")
        yield Footer()

    def on_mount(self) -> None:
        versions = self.query_one("#versions", DataTable)
        proposals = self.query_one("#proposals", DataTable)
        for table, names in (
            (versions, ("version", "revision", "kind", "writer", "time", "age", "value")),
            (proposals, ("proposer", "confidence", "revision", "base", "age", "value")),
        ):
            for name in names:  # ages get a fixed width so that columns do not jump
                table.add_column(name, width=5 if name == "age" else None)
        self.query_one("#diff-box").border_title = "diff"
        self.query_one("#causation-box").border_title = "causation"
        self.board_app.changes.subscribe(self, self._on_changes)
        versions.focus()
        self.board_app.run_io(self.reload, name="entry-load", exclusive=True)

    def _on_changes(self, batch: list[Change]) -> None:
        if any(c.key == self.key for c in batch):
            self.board_app.run_io(self.reload, name="entry-load", exclusive=True)

    async def reload(self) -> None:
        try:
            self.detail = await self.board_app.reader.detail(self.key)
        except BlackboardError as exc:
            self.query_one("#status", Static).update(Text(f" {self.key}: {exc}"))
            return
        self._show()

    # -- drawing -----------------------------------------------------------------------------

    def _show(self) -> None:
        d = self.detail
        if d is None:
            return
        now = self.board_app.clock() * 1000
        live = d.versions[0] if d.versions else None
        state = "absent" if live is None else "deleted" if live.deleted else f"v{live.version}"
        kept, proposed = len(d.versions), len(d.proposals)
        extra = f"{self.key} · {state} · {kept} versions kept · {proposed} proposals"
        self.query_one("#status", Static).update(Text(self.board_app.status_line("entry", extra)))
        versions = self.query_one("#versions", DataTable)
        row = versions.cursor_row
        versions.clear()
        for e in d.versions:
            marks = ("A" if e.version == self._left() else "") + (
                "B" if e.version == self._right() else ""
            )
            versions.add_row(
                Text(f"{e.version} {marks}".strip()),
                Text(str(e.revision)),
                Text(e.kind),
                Text(e.writer),
                Text(clock_time(e.time_ms)),
                Text(age(now - e.time_ms)),
                Text(preview(e.value, 80, deleted=e.deleted)),
                key=str(e.version),
            )
        if d.versions:
            versions.move_cursor(row=min(row, len(d.versions) - 1))
        proposals = self.query_one("#proposals", DataTable)
        proposals.clear()
        for p in d.proposals:
            proposals.add_row(
                Text(p.proposer),
                Text("" if p.confidence is None else f"{p.confidence:.2f}"),
                Text(str(p.revision)),
                Text(f"v{p.base_version}"),
                Text(age(now - p.time_ms)),
                Text(preview(p.value, 80)),
            )
        self.query_one("#diff", Static).update(self._diff())
        self.query_one("#causation", Static).update(self._causation())

    def _version(self, number: int | None) -> Entry | None:
        if self.detail is None or number is None:
            return None
        return next((e for e in self.detail.versions if e.version == number), None)

    def _left(self) -> int | None:
        if self.left is not None:
            return self.left
        vs = self.detail.versions if self.detail else []
        return vs[1].version if len(vs) > 1 else None

    def _right(self) -> int | None:
        if self.right is not None:
            return self.right
        vs = self.detail.versions if self.detail else []
        return vs[0].version if vs else None

    def _diff(self) -> Text:
        a, b = self._version(self._left()), self._version(self._right())
        if b is None:
            return Text("no versions retained")
        if a is None:
            body = "(deleted)" if b.deleted else pretty(b.value)
            return Text(f"only v{b.version} is kept (nothing to compare):\n\n{body}")
        lines = diff_lines(
            None if a.deleted else a.value,
            None if b.deleted else b.value,
            f"v{a.version} by {a.writer}",
            f"v{b.version} by {b.writer}",
        )
        if not lines:
            return Text(f"v{a.version} and v{b.version} hold the same value")
        return _diff_text(lines)

    def _causation(self) -> Text:
        d = self.detail
        out = Text()
        if d is None or not d.versions:
            return out
        cur = d.versions[0]
        c = cur.causation
        out.append(f"v{cur.version} written by {cur.writer}\n", style="bold")
        if c is None or not c.activation:
            out.append("not written by an activation\n")
        else:
            out.append(f"activation {c.activation} (depth {c.depth})\n")
            act = d.activation
            if act is None:
                out.append("  its record is gone (finished and cleared)\n")
            else:
                out.append(
                    f"  role {act['role']}, rule {act['rule']}, state {act['state']}"
                    + (f" by {act['agent']}" if act.get("agent") else "")
                    + "\n"
                )
                out.append(
                    f"  triggered by the change to {act['key']} v{act['version']}"
                    f" at revision {act['revision']}\n"
                )
                if act.get("escalated_from"):
                    out.append(f"  escalated from {act['escalated_from']}\n")
                for reason in act.get("why") or []:
                    out.append(f"  · {reason}\n")
        if d.decisions:
            out.append("\ncontroller decisions (newest first)\n", style="bold")
            for dec in d.decisions[:10]:
                if isinstance(dec, dict):
                    reasons = "; ".join(str(r) for r in dec.get("why") or [])
                    out.append(
                        f"  {dec.get('d', '?')} {dec.get('role', '')} on v{dec.get('v', '?')}"
                        f" ({dec.get('rule', '')}): {reasons}\n"
                    )
                else:
                    out.append(f"  {dec}\n")
        return out

    # -- actions -----------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_mark(self, side: str) -> None:
        table = self.query_one("#versions", DataTable)
        if self.detail is None or not self.detail.versions:
            return
        number = self.detail.versions[min(table.cursor_row, len(self.detail.versions) - 1)].version
        if side == "a":
            self.left = number
        else:
            self.right = number
        self._show()

    async def action_reload(self) -> None:
        await self.reload()

    def say(self, text: str, kind: str) -> None:
        msg = self.query_one("#message", Static)
        msg.set_classes(f"message {kind}".strip())
        msg.update(Text(text))

    def _shown(self) -> tuple[bool, Entry | None]:
        """Whether the screen has loaded, and the current version it shows (None: absent)."""
        if self.detail is None:
            return False, None
        return True, self.detail.versions[0] if self.detail.versions else None

    def action_edit(self) -> None:
        from blackboard.tui.screens.edit_screen import EditScreen

        loaded, shown = self._shown()
        if not loaded:
            return
        desk = self.board_app.operator
        start = None if shown is None or shown.deleted else shown.value
        at = "absent" if shown is None or shown.deleted else f"v{shown.version}"

        def edited(result: tuple[Any] | None) -> None:
            if result is not None:
                self._write("wrote", shown, lambda: desk.put(self.key, result[0], shown))

        title = f"edit {self.key} ({at}; ctrl+s writes as {desk.actor}, escape cancels)"
        self.app.push_screen(EditScreen(title, pretty(start)), edited)

    def action_delete(self) -> None:
        from blackboard.tui.screens.confirm_screen import ConfirmScreen

        loaded, shown = self._shown()
        if not loaded or shown is None or shown.deleted:
            self.say(f"{self.key} is not a live entry: nothing to delete", "error")
            return
        desk = self.board_app.operator
        question = (
            f"Delete {self.key} v{shown.version}? It leaves a tombstone; the history keeps "
            "the value."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._write("deleted", shown, lambda: desk.delete(self.key, shown))

        self.app.push_screen(ConfirmScreen(question), confirmed)

    def _write(self, verb: str, shown: Entry | None, write: Callable[[], Awaitable[Entry]]) -> None:
        async def go() -> None:
            try:
                entry = await write()
            except ConflictError as exc:
                was = "absent" if shown is None or shown.deleted else f"version {shown.version}"
                now = "deleted or absent" if exc.actual == 0 else f"at version {exc.actual}"
                self.say(
                    f"conflict: {self.key} is {now}, this screen showed {was}; nothing was "
                    "written. Look at the new version and decide again.",
                    "error",
                )
                await self.reload()
                return
            except BlackboardError as exc:
                self.say(f"nothing was written: {exc}", "error")
                return
            what = "deleted" if entry.deleted else f"v{entry.version}"
            self.say(f"{verb} {self.key}: {what} as {self.board_app.operator.actor}", "ok")
            await self.reload()

        self.run_worker(go(), group="entry-write", exit_on_error=False)
