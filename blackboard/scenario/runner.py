"""Running a scenario end to end (the top of the scenario layer; imports connection,
policy_board and every scenario module).

Order of a run: start the server (and proxy), connect, apply each board's policy, start
every process and wait until the system is ready; then write the workload, play the faults
and watch progress until every item is done and every fault has played (or the duration or
timeout is reached); let activations settle; stop every process with SIGTERM; read the
facts from the board; check the invariants; report. Whatever happens (an error, Ctrl-C,
SIGTERM), every process, the proxy and the server are stopped before `run_scenario` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from blackboard.board.client import Board
from blackboard.board.connection import connect, redis_from_url
from blackboard.control.policy_board import apply_policy
from blackboard.errors import BlackboardError
from blackboard.scenario import collect
from blackboard.scenario.facts import Facts
from blackboard.scenario.faults import FaultPlayer
from blackboard.scenario.invariants import CounterCheck, Expectations, InvariantResult, check_all
from blackboard.scenario.live import LiveView
from blackboard.scenario.load import ScenarioPlan
from blackboard.scenario.model import render
from blackboard.scenario.monitor import Monitor
from blackboard.scenario.processes import Supervisor
from blackboard.scenario.report import build_report
from blackboard.scenario.system import (
    System,
    child_env,
    credentials_env,
    process_ready,
    process_specs,
    scenario_settings,
    wait_ready,
)
from blackboard.scenario.workload import AckLog, Item, make_items, write_items, write_probes
from blackboard.settings import Settings

__all__ = ["RunOptions", "RunResult", "expectations", "run_scenario"]


@dataclass(slots=True)
class RunOptions:
    quiet: bool = False
    redis_url: str | None = None
    keep_logs: bool = False
    console: Console | None = None


@dataclass(slots=True)
class RunResult:
    exit_code: int
    report: dict[str, Any]
    invariants: list[InvariantResult] = field(default_factory=list)
    interrupted: bool = False


def expectations(plan: ScenarioPlan, items_expected: int) -> Expectations:
    """The scenario's invariants as plain values for the pure checks."""
    s = plan.scenario
    inv = s.invariants
    first = plan.boards[0].name
    human = inv.escalation_role or plan.board(None).policy.escalation.human
    enabled = {
        name
        for name, on in {
            "final_state": inv.final_state,
            "acknowledged_writes": inv.acknowledged_writes,
            "no_duplicate_effect": bool(inv.once or inv.counter),
            "no_stuck_activations": inv.no_stuck_activations,
            "escalations": inv.escalations,
            "clean_shutdown": inv.clean_shutdown,
        }.items()
        if on
    }
    counters = [
        CounterCheck(
            c.board or first, tuple(c.keys), items_expected if c.equals == "items" else c.equals
        )
        for c in inv.counter
    ]
    esc = (first, inv.escalation_counter) if inv.escalation_counter else None
    return Expectations(
        s.workload.final.field, s.workload.final.equals, inv.allowed_failures, counters,
        human, esc, frozenset(enabled),
    )  # fmt: skip


def _fill(template: str, item: Item) -> str:
    return render(template, item.index, item.board)


class _Run:
    """One run's moving parts, so that cleanup can reach all of them."""

    def __init__(self, plan: ScenarioPlan, options: RunOptions) -> None:
        self.plan = plan
        self.options = options
        self.console = options.console or Console()
        self.run_id = uuid.uuid4().hex[:8]
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"blackboard-run-{plan.scenario.name[:20]}-"))
        self.settings = scenario_settings(plan)
        self.sup = Supervisor(self.run_dir / "logs", child_env(plan))
        self.system: System | None = None
        self.interrupted = asyncio.Event()
        self.stop_codes: dict[str, int] = {}

    async def execute(self) -> RunResult:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.interrupted.set)
        try:
            async with AsyncExitStack() as stack:
                return await self._run(stack)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if any(m.alive for m in self.sup.procs.values()):
                with contextlib.suppress(Exception):
                    self.stop_codes.update(await asyncio.shield(self.sup.stop_all(2.0)))
                self.sup.kill_all_now()
            if self.system is not None:
                await self.system.close()
            # the logs may be kept; the processes' password file is not
            (self.run_dir / "redis.password").unlink(missing_ok=True)

    async def _run(self, stack: AsyncExitStack) -> RunResult:
        plan, s = self.plan, self.plan.scenario
        started = time.time()
        self.system = system = await System.start(plan, self.options.redis_url)
        self.sup.env = credentials_env(self.sup.env, system, self.run_dir)
        control = redis_from_url(system.direct_url, Settings())
        stack.push_async_callback(control.aclose)
        names = {b.name: b.name for b in plan.boards}
        boards: dict[str, Board] = {}
        for b in plan.boards:
            board = await stack.enter_async_context(
                connect(system.direct_url, board=b.name, writer="scenario")
            )
            if system.server is None and await board.revision() > 0:
                names = {n: f"{n}-{self.run_id[:6]}" for n in names}
                break
            boards[b.name] = board
        if len(boards) < len(plan.boards):
            boards = {}
            for b in plan.boards:
                boards[b.name] = await stack.enter_async_context(
                    connect(system.direct_url, board=names[b.name], writer="scenario")
                )
        for b in plan.boards:
            await apply_policy(boards[b.name], b.policy_source, str(b.policy_path))
        for spec in process_specs(plan, names, system.process_url):
            self.sup.add(spec)
        view = LiveView(s.name, s.workload.items, self.sup, self.console, quiet=self.options.quiet)
        for w in plan.warnings:
            view.note(f"warning: {w}")
        where = f"{len(self.sup.procs)} processes on {system.shown_url}"
        view.note(f"{s.name}: {where}, logs in {self.run_dir}")
        self.sup.start_all()
        await self._until(wait_ready(plan, boards, self.sup, s.run.ready_timeout))

        first = plan.boards[0].name
        items = make_items(s.workload, plan.item_boards, s.seed)
        final = s.workload.final
        final_keys = {
            (
                final.board or it.board,
                it.key if final.key == "{key}" else _fill(final.key, it),
            ): it.index
            for it in items
        }
        acklog = AckLog()
        human = expectations(plan, 0).escalation_role
        monitor = Monitor(
            boards, final_keys, final.field, final.equals, human, self.sup, acklog,
            item_keys={(it.board, it.key): it.index for it in items},
        )  # fmt: skip
        await monitor.mark_start()
        stop_watch = asyncio.Event()
        stop_writes = asyncio.Event()
        player = FaultPlayer(
            list(s.faults), plan.boards[0].name, self.sup, server=system.server,
            proxy=system.proxy, control=control, boards=boards, acks=acklog, seed=s.seed,
            on_event=view.fault, ready=lambda m: process_ready(m, boards),
        )  # fmt: skip
        t0 = monitor.t0 = time.monotonic()
        t0_wall = time.time()
        tasks = [asyncio.create_task(monitor.watch(name, stop_watch)) for name in boards]
        tasks.append(asyncio.create_task(monitor.sample_loop(stop_watch)))
        rate = None if s.workload.burst else s.workload.rate
        writer = asyncio.create_task(
            write_items(boards, items, rate, acklog, self.run_id, stop_writes)
        )
        probes = asyncio.create_task(
            write_probes(boards[first], first, s.workload.probes, acklog, self.run_id, stop_writes)
        )
        faults = asyncio.create_task(player.run(t0))
        timed_out = False
        with view:
            deadline = t0 + s.run.timeout
            end = t0 + (s.run.duration or 0)
            while not self.interrupted.is_set():
                for ex in self.sup.reap():
                    if not ex.expected:
                        view.note(f"process {ex.name} exited with code {ex.code} on its own")
                view.update(monitor.samples)
                now = time.monotonic()
                if s.run.until == "done":
                    if writer.done():
                        monitor.expect(len(acklog.items()))
                    if writer.done() and monitor.all_done.is_set() and faults.done():
                        break
                elif now >= end and faults.done():
                    break
                if now >= deadline:
                    timed_out = True
                    view.note(f"timeout: {s.run.timeout:g}s reached")
                    break
                await asyncio.sleep(0.1)
            stop_writes.set()
            for failed in await asyncio.gather(writer, probes, return_exceptions=True):
                if isinstance(failed, Exception):  # a bug, not a fault: say so, fail the run
                    raise BlackboardError(f"the workload writer failed: {failed!r}") from failed
            monitor.expect(len(acklog.items()))
            if not faults.done():
                faults.cancel()
                await asyncio.gather(faults, return_exceptions=True)
            if system.proxy is not None:
                system.proxy.delay = 0.0
            if system.server is not None and system.server.process is None:
                await asyncio.to_thread(system.server.start)
            if not self.interrupted.is_set():
                await self._settle(plan, boards, monitor, view)
            stop_watch.set()
            _, late = await asyncio.wait(tasks, timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.interrupted.is_set():
            raise KeyboardInterrupt
        t_end = time.monotonic() - t0
        self.stop_codes = await self.sup.stop_all(self.settings.shutdown_grace + 5)
        facts = await self._facts(plan, boards, items, acklog)
        exp = expectations(plan, facts.items_expected)
        results = check_all(facts, exp)
        if timed_out:
            results.insert(
                0,
                InvariantResult(
                    "completed", False, f"the run timed out after {s.run.timeout:g}s", [], 1
                ),
            )
        writes = [
            (a.sent - t0_wall, (a.acked - a.sent) * 1000) for a in acklog.acks if a.kind == "probe"
        ]
        report = build_report(
            plan, self.run_id, names, system, started, t0_wall, t_end, facts, exp, results,
            monitor.samples, player.events, writes, str(self.run_dir),
        )  # fmt: skip
        ok = all(r.ok for r in results)
        return RunResult(0 if ok else 1, report, results)

    async def _until(self, coro: Any) -> Any:
        """Await `coro` unless the run is interrupted first."""
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self.interrupted.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise KeyboardInterrupt
        return task.result()

    async def _settle(
        self, plan: ScenarioPlan, boards: dict[str, Board], monitor: Monitor, view: LiveView
    ) -> None:
        """Wait (at most `run.settle` s) for every item to finish and activations to clear."""
        deadline = time.monotonic() + plan.scenario.run.settle
        while time.monotonic() < deadline and not self.interrupted.is_set():
            view.update(monitor.samples)
            quiet = monitor.all_done.is_set()
            for b in plan.boards:
                if not quiet:
                    break
                try:
                    f = await collect.board_facts(
                        boards[b.name], _roles(b), set(), activations=False
                    )
                except BlackboardError:
                    quiet = False
                    break
                quiet = not (
                    f.open_activations
                    or any(f.pending.values())
                    or any(f.lag.values())
                    or f.waiting
                )
            if quiet:
                return
            await asyncio.sleep(0.25)

    async def _facts(
        self, plan: ScenarioPlan, boards: dict[str, Board], items: list[Item], acklog: AckLog
    ) -> Any:
        s = plan.scenario
        final = s.workload.final
        effects = [(o.key, o.board, o.optional) for o in s.invariants.once]
        facts_items, acks = await collect.item_facts(
            boards, items, acklog, (final.key, final.board), effects, _fill
        )
        facts = Facts(items=facts_items, acks=acks, items_expected=len(acklog.items()))
        first = plan.boards[0].name
        for b in plan.boards:
            counters = {
                k for c in s.invariants.counter if (c.board or first) == b.name for k in c.keys
            }
            if s.invariants.escalation_counter and b.name == first:
                counters.add(s.invariants.escalation_counter)
            facts.boards[b.name] = await collect.board_facts(boards[b.name], _roles(b), counters)
        facts.processes = collect.process_facts(self.sup, self.stop_codes)
        return facts

    def cleanup_dir(self, ok: bool) -> None:
        if ok and not self.options.keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _roles(b: Any) -> set[str]:
    roles = {r.role for r in b.policy.rules} | b.roles()
    roles |= {
        r.consensus.else_role for r in b.policy.rules if r.consensus and r.consensus.else_role
    }
    roles |= {b.policy.escalation.human}
    return {r for r in roles if r}


async def run_scenario(plan: ScenarioPlan, options: RunOptions | None = None) -> RunResult:
    """Run `plan` and check its invariants. Exit code 0 when all hold, 1 when one fails.
    Raises KeyboardInterrupt when interrupted (after cleaning up), BlackboardError when
    the system cannot be brought up."""
    run = _Run(plan, options or RunOptions())
    result = await run.execute()
    run.cleanup_dir(result.exit_code == 0)
    if result.exit_code == 0 and not run.options.keep_logs:
        result.report["logs"] = None
    return result
