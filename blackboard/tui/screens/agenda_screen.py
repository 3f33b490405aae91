"""`AgendaScreen`: the controller's agenda as the board records it.

Top: activations granted and not finished, by role and priority, with their state (queued,
claimed by an agent, released, settling), age and why they were granted. Bottom: what the
controller decided about the entries changed recently (refused, waiting, pending consensus),
with the reason; the controller keeps decisions per entry (``why:<key>``), so these are read
for the keys in the log window, newest first. Candidates waiting on the agenda live in the
leading controller's memory; their count per role comes from its published status. The
role keys (p pause, d drain, u resume, b / B breaker open / reset) act on the role of the
highlighted row. Refreshed every second while shown. Imports textual, the TUI's control read
model, display and steer keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from blackboard.control.read import ActivationInfo, DecisionInfo, RoleInfo
from blackboard.tui.display import age
from blackboard.tui.screens.steer_keys import STEER_BINDINGS, steer_role

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["AgendaScreen"]

RECENT_KEYS = 200


class AgendaScreen(Screen[None]):
    """Open activations and recent refusals."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("R", "reload", "Refresh"),
        Binding("tab", "app.focus_next", "Switch table", show=False),
        Binding("enter", "open", "Open entry"),
        *STEER_BINDINGS,
    ]
    DEFAULT_CSS = """
    AgendaScreen #open { height: 2fr; }
    AgendaScreen #decisions { height: 1fr; }
    AgendaScreen #why { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    AgendaScreen Label { background: $panel; width: 1fr; padding: 0 1; text-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.open: list[ActivationInfo] = []
        self.decided: list[DecisionInfo] = []
        self.controller_status: dict[str, Any] | None = None
        self.roles: dict[str, RoleInfo] = {}

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield Label("activations granted, not finished", id="open-title")
        yield DataTable(id="open", cursor_type="row", zebra_stripes=True)
        yield Static(id="why")
        yield Label("refused / waiting (entries changed recently)", id="decisions-title")
        yield DataTable(id="decisions", cursor_type="row")
        yield Static(id="message", classes="message")
        yield Footer()

    def on_mount(self) -> None:
        for table_id, names in (
            ("#open", ("role", "prio", "state", "entry", "age", "agent", "rule", "why granted")),
            ("#decisions", ("age", "decision", "role", "entry", "rule", "reason")),
        ):
            table = self.query_one(table_id, DataTable)
            for name in names:  # ages get a fixed width so that columns do not jump
                table.add_column(name, width=5 if name == "age" else None)
        self.query_one("#open", DataTable).focus()
        self.set_interval(1.0, self._tick)
        self._tick()

    def on_screen_resume(self) -> None:
        self._tick()

    def _tick(self) -> None:
        if self.is_current:
            self.refresh_now()

    def refresh_now(self) -> None:
        """Reload in the background, cancelling a reload still running."""
        self.board_app.run_io(self.reload, name="agenda-load", exclusive=True)

    async def reload(self) -> None:
        app = self.board_app
        acts = await app.control.open_activations()
        acts.sort(key=lambda a: (a.role, -a.priority, a.granted_ms, a.key))
        self.open = acts
        recent: list[str] = []
        for i in range(min(len(app.log_window), RECENT_KEYS * 4)):
            c = app.log_window.change_at(i)
            if c is not None and c.key not in recent:
                recent.append(c.key)
                if len(recent) >= RECENT_KEYS:
                    break
        found = await app.control.decisions(recent)
        self.decided = [d for d in found if d.what != "granted"][:200]
        self.controller_status = await app.control.status()
        self.roles = {r.role: r for r in await app.control.roles()}
        self._show()

    def _show(self) -> None:
        app = self.board_app
        now = app.clock() * 1000
        table = self.query_one("#open", DataTable)
        row = table.cursor_row
        table.clear()
        for a in self.open:
            state = a.state + (f" ×{a.deliveries}" if a.deliveries > 1 else "")
            table.add_row(
                Text(a.role), Text(str(a.priority)), Text(state), Text(f"{a.key}@v{a.version}"),
                Text(age(now - a.granted_ms)), Text(a.consumer or ""), Text(a.rule),
                Text("; ".join(a.why)),
            )  # fmt: skip
        if self.open:
            table.move_cursor(row=min(row, len(self.open) - 1))
        self._show_why()
        dec = self.query_one("#decisions", DataTable)
        drow = dec.cursor_row
        dec.clear()
        for d in self.decided:
            dec.add_row(
                Text(age(now - d.time_ms)), Text(d.what), Text(d.role),
                Text(f"{d.key}@v{d.version}"), Text(d.rule),
                Text(d.reasons[-1] if d.reasons else ""),
            )  # fmt: skip
        if self.decided:
            dec.move_cursor(row=min(drow, len(self.decided) - 1))
        waiting = ""
        status = self.controller_status
        if isinstance(status, dict) and isinstance(status.get("roles"), dict):
            parts = [
                f"{role} {info.get('waiting', 0)}"
                for role, info in sorted(status["roles"].items())
                if isinstance(info, dict) and info.get("waiting")
            ]
            waiting = " · waiting on the agenda: " + (", ".join(parts) if parts else "none")
        steered = [f"{r.role} {r.steering}" for r in self.roles.values() if r.mode != "running"]
        extra = f"{len(self.open)} open{waiting}" + "".join(f" · {s}" for s in steered)
        self.query_one("#status", Static).update(Text(app.status_line("agenda", extra)))

    def _show_why(self) -> None:
        table = self.query_one("#open", DataTable)
        text = ""
        if self.open:
            a = self.open[min(max(table.cursor_row, 0), len(self.open) - 1)]
            text = f"{a.id} on {a.key}@v{a.version}: " + "; ".join(a.why)
        self.query_one("#why", Static).update(Text(text))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "open":
            self._show_why()

    def action_reload(self) -> None:
        self.refresh_now()

    def say(self, text: str, kind: str) -> None:
        msg = self.query_one("#message", Static)
        msg.set_classes(f"message {kind}".strip())
        msg.update(Text(text))

    def action_steer(self, command: str) -> None:
        table = self.focused if isinstance(self.focused, DataTable) else None
        table = table or self.query_one("#open", DataTable)
        items: list[ActivationInfo] | list[DecisionInfo]
        items = self.decided if table.id == "decisions" else self.open
        role = None
        if items:
            name = items[min(max(table.cursor_row, 0), len(items) - 1)].role
            role = self.roles.get(name) or RoleInfo(name)
        steer_role(self, command, role, self.say, self.refresh_now)

    def action_open(self) -> None:
        table = self.focused if isinstance(self.focused, DataTable) else None
        self._open(table or self.query_one("#open", DataTable))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.data_table)

    def _open(self, table: DataTable[Any]) -> None:
        from blackboard.tui.screens.entry_screen import EntryScreen

        items: list[ActivationInfo] | list[DecisionInfo]
        items = self.decided if table.id == "decisions" else self.open
        if items:
            self.app.push_screen(EntryScreen(items[min(table.cursor_row, len(items) - 1)].key))
