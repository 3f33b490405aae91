"""Playing a scenario's fault timeline (scenario layer; imports server, board,
runtime.testing and scenario.model/processes/proxy/workload).

Kinds: ``kill`` (SIGKILL a controller, compactor or agent, as a crash would), ``stop``
(SIGTERM: a clean stop, whose exit code is checked), ``restart`` (SIGTERM then start),
``server-restart`` (kill -9 or stop the embedded server, keep it down, start it again on the
same port and AOF file), ``drop-connections`` (CLIENT KILL TYPE normal: every client's
connection is cut), ``latency`` (the loopback proxy delays each direction by `ms`), and
``lose-write`` (a sabotage that deletes an acknowledged entry behind the board's back, to
prove the checker notices). Every action is recorded with its time for the report.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from blackboard.board.client import Board
from blackboard.errors import BlackboardError
from blackboard.runtime.testing import lose_entry
from blackboard.scenario.model import Fault
from blackboard.scenario.processes import Managed, Supervisor
from blackboard.scenario.proxy import LatencyProxy
from blackboard.scenario.workload import AckLog
from blackboard.store.server import RedisServer

__all__ = ["FaultEvent", "FaultPlayer"]


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """Something the player did, `t` seconds after the workload started."""

    t: float
    kind: str
    target: str
    detail: str = ""
    duration: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "kind": self.kind,
            "target": self.target,
            "detail": self.detail,
            "duration": round(self.duration, 3),
        }


class FaultPlayer:
    """Runs the faults at their times; `done` is set once every fault and every follow-up
    (restart, end of latency) has happened."""

    def __init__(
        self,
        faults: list[Fault],
        default_board: str,
        supervisor: Supervisor,
        *,
        server: RedisServer | None,
        proxy: LatencyProxy | None,
        control: Any,
        boards: dict[str, Board],
        acks: AckLog,
        seed: int,
        on_event: Callable[[FaultEvent], None] | None = None,
        ready: Callable[[Managed], Awaitable[bool]] | None = None,
    ) -> None:
        self.faults = sorted(faults, key=lambda f: f.at)
        self.default_board = default_board
        self.sup = supervisor
        self.server = server
        self.proxy = proxy
        self.control = control  # a redis client straight to the server (not the proxy)
        self.boards = boards
        self.acks = acks
        self.rng = random.Random(f"{seed}:faults")
        self.on_event = on_event
        self.ready = ready
        self.events: list[FaultEvent] = []
        self.done = asyncio.Event()
        self.server_down = False
        self._t0 = 0.0
        self._followups: set[asyncio.Task[None]] = set()

    def _record(self, kind: str, target: str, detail: str = "", duration: float = 0.0) -> None:
        ev = FaultEvent(time.monotonic() - self._t0, kind, target, detail, duration)
        self.events.append(ev)
        if self.on_event is not None:
            self.on_event(ev)

    async def run(self, t0: float) -> None:
        """Play the timeline; `t0` is the workload's start (time.monotonic())."""
        self._t0 = t0
        try:
            for fault in self.faults:
                delay = t0 + fault.at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    await self._play(fault)
                except Exception as exc:  # a fault that cannot be played is reported, not fatal
                    self._record(fault.kind, "-", f"could not be played: {exc!r}")
            if self._followups:
                await asyncio.gather(*self._followups)
        finally:
            self.done.set()

    def _later(self, delay: float, action: Callable[[], Any]) -> None:
        async def go() -> None:
            await asyncio.sleep(delay)
            res = action()
            if asyncio.iscoroutine(res):
                await res

        task = asyncio.create_task(go())
        self._followups.add(task)

    def _pick(self, fault: Fault, *, alive: bool = True) -> Managed | None:
        board = fault.board or self.default_board
        assert fault.target is not None
        chosen = self.sup.select(fault.target, board, fault.role or "")
        if fault.index is not None:
            return chosen[fault.index] if fault.index < len(chosen) else None
        running = [m for m in chosen if m.alive] if alive else chosen
        return self.rng.choice(running) if running else None

    async def _restart(self, m: Managed) -> None:
        """Start `m` again and wait until it is up (registered, leading or reporting), so
        that no later stop reaches a process still importing its code."""
        self.sup.start(m.name)
        self._record("restart", m.name, f"pid {m.pid}")
        if self.ready is not None:
            start = time.monotonic()
            deadline = start + 15
            while time.monotonic() < deadline and m.alive:
                try:
                    if await self.ready(m):
                        return
                except (BlackboardError, RedisError):
                    pass
                await asyncio.sleep(0.05)

    async def _play(self, f: Fault) -> None:
        if f.kind in ("kill", "stop"):
            m = self._pick(f)
            if m is None:
                self._record(f.kind, f"{f.target}", "nothing running to hit")
                return
            sig = signal.SIGKILL if f.kind == "kill" else signal.SIGTERM
            pid = m.pid
            self.sup.signal(m.name, sig, f.kind)
            self._record(
                f.kind, m.name, f"{'SIGKILL' if f.kind == 'kill' else 'SIGTERM'} pid {pid}"
            )
            if f.kind == "stop":
                code = await self.sup.wait_exit(m.name, 30)
                self._record("exited", m.name, f"exit code {code}")
            if f.restart_after is not None:
                target = m

                async def restart() -> None:
                    if f.kind == "kill":
                        await self.sup.wait_exit(target.name, 10)
                    await self._restart(target)

                self._later(f.restart_after, restart)
        elif f.kind == "restart":
            m = self._pick(f, alive=False)
            if m is None:
                return
            if m.alive:
                self.sup.signal(m.name, signal.SIGTERM, "restart")
                code = await self.sup.wait_exit(m.name, 30)
                self._record("stop", m.name, f"SIGTERM, exit code {code}")
            await self._restart(m)
        elif f.kind == "server-restart":
            await self._server_restart(f)
        elif f.kind == "drop-connections":
            killed = await self.control.execute_command("CLIENT", "KILL", "TYPE", "normal")
            self._record("drop-connections", "server", f"{killed} client connection(s) cut")
        elif f.kind == "latency":
            assert self.proxy is not None and f.ms is not None
            self.proxy.delay = f.ms / 1000
            self._record("latency", "proxy", f"+{f.ms:g} ms each way", f.duration or 0.0)
            if f.duration:
                proxy = self.proxy

                def clear() -> None:
                    proxy.delay = 0.0
                    self._record("latency", "proxy", "back to +0 ms")

                self._later(f.duration, clear)
        elif f.kind == "lose-write":
            await self._lose_write()

    async def _server_restart(self, f: Fault) -> None:
        server = self.server
        assert server is not None
        kill = f.signal == "kill"
        self.server_down = True
        start = time.monotonic()
        await asyncio.to_thread(server.stop, kill=kill)
        self._record("server-stop", "server", "SIGKILL" if kill else "SIGTERM", f.down_for)
        await asyncio.sleep(f.down_for)
        await asyncio.to_thread(server.start)
        self.server_down = False
        self._record("server-start", "server", f"back after {time.monotonic() - start:.2f}s (AOF)")

    async def _lose_write(self) -> None:
        items = self.acks.items()
        if not items:
            self._record("lose-write", "-", "no acknowledged item yet")
            return
        ack = self.rng.choice(items)
        board = self.boards[ack.board]
        try:
            await lose_entry(board, ack.key, client=self.control)
        except BlackboardError as exc:
            self._record("lose-write", ack.key, f"failed: {exc}")
            return
        self._record("lose-write", f"{ack.board}:{ack.key}", "entry deleted behind the board")
