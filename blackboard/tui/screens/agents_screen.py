"""`AgentsScreen`: every role as operators steer it (running, paused, draining or drained,
by whom and why; in flight, waiting, breaker), every agent process with its role, heartbeat
age, activations in flight (the claims it holds in its role's queue), outcomes so far and its
role's breaker state, and a line about the controller that leads. The role keys (p pause,
d drain, u resume, b / B breaker open / reset) act on the highlighted role, or on the
highlighted agent's role; P rolls the policy back (after a confirmation, compare-and-set
on the version shown); tab switches tables. Refreshed every second while shown; R refreshes
now. Imports textual, the TUI's control read model, display and steer keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from blackboard.control.read import AgentInfo, RoleInfo
from blackboard.errors import BlackboardError, ConflictError
from blackboard.tui.display import age
from blackboard.tui.screens.steer_keys import STEER_BINDINGS, steer_role

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["AgentsScreen"]

STALE_AFTER_MS = 5000


class AgentsScreen(Screen[None]):
    """Agent presence and health."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("R", "reload", "Refresh"),
        Binding("tab", "app.focus_next", "Switch table", show=False),
        *STEER_BINDINGS,
        Binding("P", "rollback", "Roll the policy back", show=False),
    ]
    DEFAULT_CSS = """
    AgentsScreen #agents { height: 1fr; }
    AgentsScreen #roles { height: auto; max-height: 10; }
    AgentsScreen #controller { height: auto; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.agents: list[AgentInfo] = []
        self.roles: list[RoleInfo] = []
        self.policy: tuple[str, int] | None = None

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield Static(id="controller")
        yield DataTable(id="roles", cursor_type="row")
        yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
        yield Static(id="message", classes="message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#agents", DataTable)
        for name in (
            "agent", "role", "host:pid", "heartbeat", "in flight", "claims", "done", "failed",
            "lost", "breaker",
        ):  # fmt: skip
            table.add_column(name, width=9 if name == "heartbeat" else None)
        roles = self.query_one("#roles", DataTable)
        for name in ("role", "steering", "in flight", "waiting", "breaker"):
            roles.add_column(name)
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
        self.board_app.run_io(self.reload, name="agents-load", exclusive=True)

    async def reload(self) -> None:
        control = self.board_app.control
        self.agents = await control.agents()
        self.roles = await control.roles()
        self.policy = await control.policy()
        status = await control.status()
        holder = await control.lease_holder()
        self._show(status, holder)

    def _show(self, status: dict[str, object] | None, holder: str | None) -> None:
        app = self.board_app
        now = app.clock() * 1000
        self._show_roles()
        table = self.query_one("#agents", DataTable)
        row = table.cursor_row
        table.clear()
        for a in self.agents:
            beat = now - a.beat_ms
            beat_text = Text(age(beat), style="bold red" if beat > STALE_AFTER_MS else "")
            claims = ", ".join(f"{c.key}@v{c.version}" for c in a.claims[:3])
            if len(a.claims) > 3:
                claims += f" +{len(a.claims) - 3}"
            breaker = Text(a.breaker, style="bold red" if a.breaker != "closed" else "")
            table.add_row(
                Text(a.name), Text(a.role), Text(f"{a.host}:{a.pid}"), beat_text,
                Text(f"{a.inflight}/{a.concurrency}"), Text(claims), Text(str(a.done)),
                Text(str(a.failed), style="red" if a.failed else ""), Text(str(a.lost)), breaker,
            )  # fmt: skip
        if self.agents:
            table.move_cursor(row=min(row, len(self.agents) - 1))
        if status is None:
            ctl = "no controller has published a status on this board"
        else:
            lead = holder or "none (lease expired)"
            ctl = f"controller lease: {lead} · policy {status.get('policy') or '-'}"
        if self.policy is not None:
            ctl += f" · sys/policy v{self.policy[1]} ({self.policy[0]})"
        self.query_one("#controller", Static).update(Text(ctl))
        extra = f"{len(self.agents)} agents"
        self.query_one("#status", Static).update(Text(app.status_line("agents", extra)))

    def _show_roles(self) -> None:
        table = self.query_one("#roles", DataTable)
        row = table.cursor_row
        table.clear()
        for r in self.roles:
            steering = Text(r.steering, style="" if r.mode == "running" else "bold yellow")
            breaker = r.breaker + (f" ({r.breaker_held})" if r.breaker_held else "")
            table.add_row(
                Text(r.role), steering, Text(str(r.in_flight)), Text(str(r.waiting)),
                Text(breaker, style="bold red" if r.breaker != "closed" else ""),
            )  # fmt: skip
        if self.roles:
            table.move_cursor(row=min(row, len(self.roles) - 1))

    def say(self, text: str, kind: str) -> None:
        msg = self.query_one("#message", Static)
        msg.set_classes(f"message {kind}".strip())
        msg.update(Text(text))

    def selected_role(self) -> RoleInfo | None:
        """The highlighted role, or the highlighted agent's role (agents table focused)."""
        agents = self.query_one("#agents", DataTable)
        if self.focused is agents and self.agents:
            name = self.agents[min(max(agents.cursor_row, 0), len(self.agents) - 1)].role
            return next((r for r in self.roles if r.role == name), RoleInfo(name))
        roles = self.query_one("#roles", DataTable)
        if not self.roles:
            return None
        return self.roles[min(max(roles.cursor_row, 0), len(self.roles) - 1)]

    def action_steer(self, command: str) -> None:
        steer_role(self, command, self.selected_role(), self.say, self.refresh_now)

    def action_rollback(self) -> None:
        from blackboard.tui.screens.confirm_screen import ConfirmScreen

        shown = self.policy
        if shown is None:
            self.say("no policy is in force: nothing to roll back", "error")
            return
        desk = self.board_app.operator
        question = (
            f"Roll the policy back? sys/policy v{shown[1]} ({shown[0]}) is in force; the "
            "previous valid version is written again as the next one."
        )

        async def roll() -> None:
            try:
                entry = await desk.rollback_policy(shown[1])
            except ConflictError as exc:
                self.say(
                    f"conflict: sys/policy is at version {exc.actual}, this screen showed "
                    f"version {shown[1]}; nothing was written. Press R to reload.",
                    "error",
                )
                return
            except BlackboardError as exc:
                self.say(f"nothing was written: {exc}", "error")
                return
            self.say(
                f"rolled back: sys/policy v{entry.version} in force (was v{shown[1]}) as "
                f"{desk.actor}",
                "ok",
            )
            self.refresh_now()

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_worker(roll(), group="rollback", exit_on_error=False)

        self.app.push_screen(ConfirmScreen(question), confirmed)

    def action_reload(self) -> None:
        self.refresh_now()
