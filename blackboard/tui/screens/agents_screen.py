"""`AgentsScreen`: every agent process with its role, heartbeat age, activations in flight
(the claims it holds in its role's queue), outcomes so far and its role's breaker state, and
a line about the controller that leads. Refreshed every second while shown; R refreshes now.
Imports textual, the TUI's control read model and display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from blackboard.tui.control_model import AgentInfo
from blackboard.tui.display import age

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["AgentsScreen"]

STALE_AFTER_MS = 5000


class AgentsScreen(Screen[None]):
    """Agent presence and health."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("R", "reload", "Refresh")]
    DEFAULT_CSS = """
    AgentsScreen #agents { height: 1fr; }
    AgentsScreen #controller { height: auto; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.agents: list[AgentInfo] = []

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="status", classes="status")
        yield Static(id="controller")
        yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in (
            "agent", "role", "host:pid", "heartbeat", "in flight", "claims", "done", "failed",
            "lost", "breaker",
        ):  # fmt: skip
            table.add_column(name, width=9 if name == "heartbeat" else None)
        self.query_one(DataTable).focus()
        self.set_interval(1.0, self._tick)
        self._tick()

    def on_screen_resume(self) -> None:
        self._tick()

    def _tick(self) -> None:
        if self.is_current:
            self.board_app.run_io(self.reload, name="agents-load", exclusive=True)

    async def reload(self) -> None:
        control = self.board_app.control
        self.agents = await control.agents()
        status = await control.status()
        holder = await control.lease_holder()
        self._show(status, holder)

    def _show(self, status: dict[str, object] | None, holder: str | None) -> None:
        app = self.board_app
        now = app.clock() * 1000
        table = self.query_one(DataTable)
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
            roles = status.get("roles") or {}
            parts = []
            if isinstance(roles, dict):
                for role, info in sorted(roles.items()):
                    if isinstance(info, dict):
                        parts.append(
                            f"{role}: {info.get('pending', 0)} open, {info.get('waiting', 0)} "
                            f"waiting, breaker {info.get('breaker', '?')}"
                        )
            lead = holder or "none (lease expired)"
            ctl = f"controller lease: {lead} · policy {status.get('policy') or '-'}"
            if parts:
                ctl += "\n" + "\n".join(parts)
        self.query_one("#controller", Static).update(Text(ctl))
        extra = f"{len(self.agents)} agents"
        self.query_one("#status", Static).update(Text(app.status_line("agents", extra)))

    async def action_reload(self) -> None:
        await self.reload()
