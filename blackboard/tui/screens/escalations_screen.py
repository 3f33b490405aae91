"""`EscalationsScreen`: what waits for a human, and the human's decision on it.

Lists the activations the controller escalated to the human role and the compactor's open
merge escalations, with the value in question beside the entry's current version. a
approves, e edits the value (JSON), r rejects (after a confirmation); each is written by
`HumanDesk` as ``human:<user>`` with compare-and-set against the versions this view showed,
so a stale view gets a conflict message and never overwrites. Refreshed every two seconds
while shown (the item a decision is about is the one that was on screen when the key was
pressed). Imports textual, the TUI's control read model, human desk and display.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker

from blackboard.errors import BlackboardError, ConflictError, LeaseLostError
from blackboard.store.entry import Entry
from blackboard.tui.display import age, diff_lines, pretty, preview
from blackboard.tui.escalations import EscalationItem, read_escalations
from blackboard.tui.human_desk import EscalationGoneError

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["EscalationsScreen", "explain_failure"]


def explain_failure(item: EscalationItem, exc: BlackboardError) -> str:
    """One line a human can act on, for a decision that wrote nothing."""
    if isinstance(exc, ConflictError):
        shown = item.doc_version if item.kind == "merge" else item.version
        what = item.doc_key if item.kind == "merge" else item.key
        now = "deleted or absent" if exc.actual == 0 else f"at version {exc.actual}"
        return (
            f"conflict: {what} is {now}, this view showed version {shown}; nothing was "
            "written. Press R to reload and decide again."
        )
    if isinstance(exc, LeaseLostError):
        return f"another consumer took this escalation ({exc}); nothing was written."
    if isinstance(exc, EscalationGoneError):
        return str(exc)
    return f"nothing was written: {exc}"


class EscalationsScreen(Screen[None]):
    """Items waiting for a human."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve"),
        Binding("e", "edit", "Edit value"),
        Binding("r", "reject", "Reject"),
        Binding("R", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    EscalationsScreen #items { height: 1fr; }
    EscalationsScreen #detail-box { height: 1fr; border: round $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.items: list[EscalationItem] = []
        self.decided: set[str] = set()
        self.loaded = False
        self.deciding: Worker[None] | None = None

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield DataTable(id="items", cursor_type="row", zebra_stripes=True)
        yield Static(id="message", classes="message")
        with VerticalScroll(id="detail-box"):
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in ("kind", "entry", "why", "from", "age", "held by", "state"):
            table.add_column(name, width=5 if name == "age" else None)
        self.query_one("#detail-box").border_title = "value in question"
        self.query_one(DataTable).focus()
        self.set_interval(2.0, self._tick)
        self._tick()

    def on_screen_resume(self) -> None:
        self._tick()

    def _tick(self) -> None:
        if self.is_current:
            self.board_app.run_io(self.reload, name="escalations-load", exclusive=True)

    async def reload(self) -> None:
        found = await read_escalations(self.board_app.control)
        ids = {i.id for i in found}
        self.decided &= ids  # forget decisions once the board no longer lists them
        self.items = [i for i in found if i.id not in self.decided]
        self.loaded = True
        self._show()

    # -- drawing -----------------------------------------------------------------------------

    @property
    def current(self) -> EscalationItem | None:
        if not self.items:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.items[min(max(row, 0), len(self.items) - 1)]

    def _show(self) -> None:
        app = self.board_app
        now = app.clock() * 1000
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for it in self.items:
            held = ""
            if it.activation is not None:
                a = it.activation
                held = a.consumer or a.state
            state = "stale" if it.stale else "open"
            table.add_row(
                Text(it.kind), Text(f"{it.key}@v{it.version}"), Text(it.reason),
                Text(it.from_role or ("compactor" if it.kind == "merge" else "")),
                Text(age(now - it.time_ms)), Text(held),
                Text(state, style="bold red" if it.stale else ""),
            )  # fmt: skip
        if self.items:
            table.move_cursor(row=min(row, len(self.items) - 1))
        self._show_detail()
        extra = f"{len(self.items)} waiting for a human"
        self.query_one("#status", Static).update(Text(app.status_line("escalations", extra)))

    def _show_detail(self) -> None:
        it = self.current
        out = Text()
        if it is None:
            out.append("nothing is waiting for a human" if self.loaded else "loading…")
        elif it.kind == "merge":
            out.append(f"{it.key}: the compactor could not merge ({it.reason})\n", style="bold")
            cur = it.current
            out.append(f"current: {'absent' if cur is None else preview(cur.value, 200)}\n\n")
            for n, p in enumerate(it.doc.get("proposals") or [], 1):
                conf = p.get("confidence")
                out.append(
                    f"#{n} {p.get('proposer', '?')}"
                    + (f" (confidence {conf})" if conf is not None else "")
                    + f": {preview(p.get('value'), 200)}\n"
                )
            out.append("\na: approve a proposal · e: write your own · r: keep the current value")
        else:
            out.append(f"{it.key} v{it.version}: {it.reason}\n", style="bold")
            out.append(pretty(it.value) + "\n")
            cur = it.current
            if it.stale:
                now = "deleted" if cur is None else f"at v{cur.version} by {cur.writer}"
                out.append(f"\nstale: the entry is {now} now\n", style="bold red")
                if cur is not None:
                    for line in diff_lines(
                        it.value, cur.value, f"v{it.version}", f"v{cur.version}"
                    ):
                        out.append(line + "\n")
            out.append("\na: approve (write it as is) · e: edit · r: reject (delete the entry)")
        self.query_one("#detail", Static).update(out)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def say(self, text: str, kind: str) -> None:
        msg = self.query_one("#message", Static)
        msg.set_classes(f"message {kind}")
        msg.update(Text(text))

    # -- decisions ---------------------------------------------------------------------------

    async def _decide(
        self, verb: str, item: EscalationItem, write: Callable[[], Awaitable[Entry]]
    ) -> None:
        user = self.board_app.desk.writer
        try:
            entry = await write()
        except BlackboardError as exc:
            self.say(explain_failure(item, exc), "error")
            return
        self.decided.add(item.id)
        what = "deleted" if entry.deleted else f"wrote v{entry.version}"
        self.say(f"{verb} {item.key}: {entry.key} {what} as {user}", "ok")
        await self.reload()

    def action_approve(self) -> None:
        item = self.current
        if item is None:
            return
        desk = self.board_app.desk
        if item.kind == "merge":
            listed = item.doc.get("proposals") or []
            if len(listed) == 1:
                self._run("approved", item, lambda: desk.approve(item, 0))
                return
            options = [f"{p.get('proposer', '?')}: {preview(p.get('value'), 100)}" for p in listed]

            def picked(choice: int | None) -> None:
                if choice is not None:
                    self._run("approved", item, lambda: desk.approve(item, choice))

            from blackboard.tui.screens.pick_screen import PickScreen

            self.app.push_screen(
                PickScreen(f"approve which proposal for {item.key}?", options), picked
            )
            return
        self._run("approved", item, lambda: desk.approve(item))

    def action_edit(self) -> None:
        from blackboard.tui.screens.edit_screen import EditScreen

        item = self.current
        if item is None:
            return
        start: Any = item.value
        if item.kind == "merge":
            start = item.current.value if item.current is not None else None
        desk = self.board_app.desk

        def edited(result: tuple[Any] | None) -> None:
            if result is not None:
                self._run("edited", item, lambda: desk.edit(item, result[0]))

        title = f"edit {item.key} (ctrl+s writes as {desk.writer}, escape cancels)"
        self.app.push_screen(EditScreen(title, pretty(start)), edited)

    def action_reject(self) -> None:
        from blackboard.tui.screens.reason_screen import ReasonScreen

        item = self.current
        if item is None:
            return
        desk = self.board_app.desk
        if item.kind == "merge":
            question = f"Reject the proposals for {item.key} and keep its current value?"
            hint = "reason (kept on the record)"
        else:
            question = (
                f"Reject {item.key} v{item.version}? This deletes the entry "
                "(its history keeps the value)."
            )
            hint = "reason (kept on the record); end with '> role' to send it back to a role"

        def answered(reason: str | None) -> None:
            if reason is None:
                return
            back_to = None
            if item.kind != "merge" and ">" in reason:
                reason, _, role = reason.rpartition(">")
                reason, back_to = reason.strip(), role.strip() or None
            self._run("rejected", item, lambda: desk.reject(item, reason, back_to))

        self.app.push_screen(ReasonScreen(question, hint), answered)

    def _run(self, verb: str, item: EscalationItem, write: Callable[[], Awaitable[Entry]]) -> None:
        work = functools.partial(self._decide, verb, item, write)
        worker: Worker[None] = self.run_worker(work, group="decide", exit_on_error=False)
        self.deciding = worker

    async def action_reload(self) -> None:
        await self.reload()
