"""`ActivationsScreen`: every activation an operator may act on, by state: running (an agent
holds it), queued (granted, not taken yet), waiting (a candidate the controller holds, with
the guard that holds it), retrying (with the time of its next attempt) and failed (dead
letters), filtered by role and state.

t retries the highlighted one (a scheduled retry runs now, a dead letter is queued again),
x cancels it (after a confirmation with a reason): the same requests as
``blackboard activation retry|cancel``, answered by the controller on the record. The role
keys (p, d, u, b, B) steer the highlighted activation's role. / edits the role filter, s
cycles the state filter, enter opens the entry. Refreshed every second while shown.
Imports textual, the TUI's control read model, operator desk, display and screens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from blackboard.control.read import ACTIVATION_STATES, ActivationRow, RoleInfo
from blackboard.errors import BlackboardError
from blackboard.tui.display import age
from blackboard.tui.screens.steer_keys import STEER_BINDINGS, steer_role

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["ActivationsScreen"]

_ORDER = {s: i for i, s in enumerate(ACTIVATION_STATES)}
_STYLE = {"failed": "bold red", "retrying": "yellow", "waiting": "cyan"}


class ActivationsScreen(Screen[None]):
    """Activations by state, with retry and cancel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "retry", "Retry"),
        Binding("x", "cancel", "Cancel"),
        Binding("slash", "filter", "Role filter", key_display="/"),
        Binding("s", "cycle_state", "State filter"),
        Binding("enter", "open", "Open entry"),
        Binding("R", "reload", "Refresh"),
        *STEER_BINDINGS,
    ]
    DEFAULT_CSS = """
    ActivationsScreen #filters { height: 1; background: $panel; }
    ActivationsScreen #filters Label { padding: 0 1; color: $text-muted; }
    ActivationsScreen #role-filter {
        border: none; height: 1; padding: 0 1; width: 24; background: $surface;
    }
    ActivationsScreen #role-filter:focus { background: $boost; }
    ActivationsScreen #activations { height: 1fr; }
    ActivationsScreen #detail { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.all: list[ActivationRow] = []
        self.rows: list[ActivationRow] = []
        self.roles: dict[str, RoleInfo] = {}
        self.role_filter = ""
        self.state_filter = ""

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        with Horizontal(id="filters"):
            yield Label("role")
            yield Input(placeholder="any", id="role-filter")
            yield Label("state: all", id="state-filter")
        yield DataTable(id="activations", cursor_type="row", zebra_stripes=True)
        yield Static(id="message", classes="message")
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in ("state", "role", "entry", "try", "when", "agent", "why"):
            table.add_column(name, width={"when": 8, "try": 3}.get(name))
        table.focus()
        self.set_interval(1.0, self._tick)
        self._tick()

    def on_screen_resume(self) -> None:
        self._tick()

    def _tick(self) -> None:
        if self.is_current:
            self.refresh_now()

    def refresh_now(self) -> None:
        """Reload in the background, cancelling a reload still running."""
        self.board_app.run_io(self.reload, name="activations-load", exclusive=True)

    async def reload(self) -> None:
        control = self.board_app.control
        found = await control.activations()
        found.sort(key=lambda r: (_ORDER.get(r.state, 9), r.role, r.when_ms, r.key))
        self.all = found
        self.roles = {r.role: r for r in await control.roles()}
        self._show()

    # -- drawing -----------------------------------------------------------------------------

    def _filtered(self) -> list[ActivationRow]:
        return [
            r
            for r in self.all
            if (not self.role_filter or r.role == self.role_filter)
            and (not self.state_filter or r.state == self.state_filter)
        ]

    def _show(self) -> None:
        app = self.board_app
        now = app.clock() * 1000
        self.rows = self._filtered()
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for r in self.rows:
            if r.state == "retrying":
                wait = r.when_ms - now
                when = f"in {age(wait)}" if wait > 0 else "due"
            else:
                when = age(now - r.when_ms) if r.when_ms else ""
            table.add_row(
                Text(r.state, style=_STYLE.get(r.state, "")), Text(r.role),
                Text(f"{r.key}@v{r.version}"), Text(str(r.attempt)), Text(when), Text(r.agent),
                Text(r.why),
            )  # fmt: skip
        if self.rows:
            table.move_cursor(row=min(row, len(self.rows) - 1))
        self._show_detail()
        counts = {s: sum(1 for r in self.all if r.state == s) for s in ACTIVATION_STATES}
        extra = " · ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
        if self.role_filter or self.state_filter:
            extra = f"{len(self.rows)} shown of {len(self.all)} · " + extra
        self.query_one("#status", Static).update(Text(app.status_line("activations", extra)))

    def _show_detail(self) -> None:
        r = self.current
        text = "" if r is None else f"{r.id} ({r.state}) on {r.key}@v{r.version}: {r.why}"
        self.query_one("#detail", Static).update(Text(text))

    @property
    def current(self) -> ActivationRow | None:
        if not self.rows:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.rows[min(max(row, 0), len(self.rows) - 1)]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def say(self, text: str, kind: str) -> None:
        msg = self.query_one("#message", Static)
        msg.set_classes(f"message {kind}".strip())
        msg.update(Text(text))

    # -- filters -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one("#role-filter", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.role_filter = event.value.strip()
        self.query_one(DataTable).focus()
        self._show()

    def action_cycle_state(self) -> None:
        states = ("", *ACTIVATION_STATES)
        self.state_filter = states[(states.index(self.state_filter) + 1) % len(states)]
        label = self.query_one("#state-filter", Label)
        label.update(f"state: {self.state_filter or 'all'}")
        self._show()

    # -- actions -----------------------------------------------------------------------------

    def action_retry(self) -> None:
        r = self.current
        if r is None:
            return
        if r.state not in ("retrying", "failed"):
            self.say(f"{r.id} is {r.state}: only a scheduled retry or a dead letter runs again "
                     "on request", "error")  # fmt: skip
            return
        self._send("retry", r, "")

    def action_cancel(self) -> None:
        from blackboard.tui.screens.reason_screen import ReasonScreen

        r = self.current
        if r is None:
            return
        if r.state not in ("retrying", "failed"):
            self.say(f"{r.id} is {r.state}: only a scheduled retry or a dead letter can be "
                     "cancelled (what runs ends by itself)", "error")  # fmt: skip
            return
        question = f"Cancel {r.id} ({r.state}) on {r.key}@v{r.version}? It will not run again."

        def confirmed(reason: str | None) -> None:
            if reason is not None:
                self._send("cancel", r, reason)

        self.app.push_screen(ReasonScreen(question), confirmed)

    def _send(self, command: str, r: ActivationRow, reason: str) -> None:
        desk = self.board_app.operator

        async def send() -> None:
            self.say(f"asked the controller to {command} {r.id}; waiting for its answer…", "")
            try:
                outcome = await desk.activation(command, r.id, r.key, reason)
            except BlackboardError as exc:
                self.say(f"nothing was sent: {exc}", "error")
                return
            self.say(outcome.text, "ok" if outcome.applied else "error")
            self.refresh_now()

        self.run_worker(send(), group="activation-command", exit_on_error=False)

    def action_steer(self, command: str) -> None:
        r = self.current
        role = None if r is None else self.roles.get(r.role) or RoleInfo(r.role)
        steer_role(self, command, role, self.say, self.refresh_now)

    def action_open(self) -> None:
        from blackboard.tui.screens.entry_screen import EntryScreen

        r = self.current
        if r is not None and r.key:
            self.app.push_screen(EntryScreen(r.key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_reload(self) -> None:
        self.refresh_now()
