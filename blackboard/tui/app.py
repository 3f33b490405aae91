"""`BoardApp`: the Textual application of `blackboard tui` (edge layer; imports textual,
the engine, the TUI's models and its screens).

It owns what the views share: the board connection, the read models, the entry pager and the
log window, and one follower that reads the change log (``board.watch``) from the revision
the TUI started at. Changes are gathered for a moment and handed over in batches: the pager
and the log window fold them in, then `changes` (a Textual signal) tells the views to redraw.
Nothing rescans the board when it changes. Views: 1 entries, 2 log, 3 agents, 4 agenda,
5 escalations, 6 activations; ? help, q quit. An operator's actions (steering roles,
retrying or cancelling activations, editing entries) go through `OperatorDesk`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.signal import Signal
from textual.worker import Worker

from blackboard.board.client import Board
from blackboard.control.read import ControlReader
from blackboard.errors import BlackboardError, HistoryTrimmedError
from blackboard.store.entry import Change
from blackboard.tui.human_desk import HumanDesk
from blackboard.tui.log_window import LogWindow
from blackboard.tui.model import BoardReader
from blackboard.tui.operator import OperatorDesk
from blackboard.tui.pager import EntryPager

__all__ = ["VIEWS", "BoardApp"]

VIEWS = ("entries", "log", "agents", "agenda", "escalations", "activations")


class BoardApp(App[None]):
    """Inspect and steer one live board."""

    TITLE = "blackboard"
    CSS = """
    Screen { layout: vertical; }
    .status { height: 1; background: $boost; color: $text; padding: 0 1; }
    .message { height: auto; max-height: 3; color: $warning; padding: 0 1; }
    .message.error { color: $error; }
    .message.ok { color: $success; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "view('entries')", "Entries"),
        Binding("2", "view('log')", "Log"),
        Binding("3", "view('agents')", "Agents"),
        Binding("4", "view('agenda')", "Agenda"),
        Binding("5", "view('escalations')", "Escalations"),
        Binding("6", "view('activations')", "Activations"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        board: Board,
        *,
        user: str,
        follow_ms: int = 1000,
        batch_delay: float = 0.15,
        clock: Callable[[], float] = time.time,
        start: str = "entries",
    ) -> None:
        super().__init__()
        self.board = board
        self.user = user
        self.clock = clock
        self.follow_ms = follow_ms
        self.batch_delay = batch_delay
        self.start_view = start
        self.reader = BoardReader(board)
        self.control = ControlReader(board)
        self.desk = HumanDesk(board, user)
        self.operator = OperatorDesk(board, user)
        self.pager = EntryPager(self.reader)
        self.log_window = LogWindow(clock=clock)
        self.changes: Signal[list[Change]] = Signal(self, "changes")
        self.revision = 0
        self.follow_error: str | None = None
        self._incoming: list[Change] = []
        self._arrived = asyncio.Event()
        self.sub_title = f"board {board.name} as human:{user}"

    async def on_mount(self) -> None:
        from blackboard.tui.screens.activations_screen import ActivationsScreen
        from blackboard.tui.screens.agenda_screen import AgendaScreen
        from blackboard.tui.screens.agents_screen import AgentsScreen
        from blackboard.tui.screens.entries_screen import EntriesScreen
        from blackboard.tui.screens.escalations_screen import EscalationsScreen
        from blackboard.tui.screens.log_screen import LogScreen

        self.revision = await self.reader.revision()
        # up to the revision the follower starts after: no change is shown twice
        self.log_window.extend(await self.reader.log_tail(500, before=self.revision + 1))
        await self.pager.reset()
        self.add_mode("entries", EntriesScreen)
        self.add_mode("log", LogScreen)
        self.add_mode("agents", AgentsScreen)
        self.add_mode("agenda", AgendaScreen)
        self.add_mode("escalations", EscalationsScreen)
        self.add_mode("activations", ActivationsScreen)
        # (annotated so that mypy infers the workers' result type)
        follow: Worker[None] = self.run_worker(self._follow, name="follow", exit_on_error=False)
        pump: Worker[None] = self.run_worker(self._pump, name="pump", exit_on_error=False)
        self.followers = (follow, pump)
        await self.switch_mode(self.start_view)

    # -- following the log -------------------------------------------------------------------

    async def _follow(self) -> None:
        since = self.revision
        while True:
            try:
                async for change in self.board.watch(since=since, block_ms=self.follow_ms):
                    since = change.revision
                    self._incoming.append(change)
                    self._arrived.set()
            except HistoryTrimmedError:
                since = await self.reader.revision()
                self.notify(
                    "The change log was trimmed under the TUI; reloaded.", severity="warning"
                )
                await self.pager.reset()
            except BlackboardError as exc:
                self.follow_error = str(exc)
                self.notify(f"following the log failed: {exc}", severity="error", timeout=3)
                await asyncio.sleep(1.0)
            else:
                return

    async def _pump(self) -> None:
        while True:
            await self._arrived.wait()
            await asyncio.sleep(self.batch_delay)
            self._arrived.clear()
            batch, self._incoming = self._incoming, []
            if not batch:
                continue
            self.follow_error = None
            self.revision = batch[-1].revision
            self.log_window.extend(batch)
            self.pager.apply(batch)
            try:
                await self.pager.settle()
            except BlackboardError as exc:
                self.notify(f"reading the board failed: {exc}", severity="error", timeout=3)
            self.changes.publish(batch)

    # -- actions -----------------------------------------------------------------------------

    async def action_view(self, name: str) -> None:
        await self.switch_mode(name)

    def action_help(self) -> None:
        from blackboard.tui.screens.help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.current_mode, self.screen))

    def status_line(self, view: str, extra: str = "") -> str:
        """The first line of every view: board, revision, what the view shows."""
        state = "log: " + self.follow_error if self.follow_error else f"rev {self.revision}"
        line = f" {view}  ·  board {self.board.name}  ·  {state}  ·  human:{self.user}"
        return f"{line}  ·  {extra}" if extra else line

    def run_io(
        self, work: Callable[[], Awaitable[object]], *, name: str = "io", exclusive: bool = False
    ) -> None:
        """Run a read in the background; a BlackboardError becomes a notification. With
        `exclusive`, a run of the same name still going is cancelled."""

        async def guarded() -> None:
            try:
                await work()
            except BlackboardError as exc:
                self.notify(str(exc), severity="error", timeout=4)

        worker: Worker[None] = self.run_worker(
            guarded, name=name, group=name, exclusive=exclusive, exit_on_error=False
        )
        self._last_io = worker
