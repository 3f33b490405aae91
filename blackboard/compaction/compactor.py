"""The compactor process: one per board under a lease; reconciles and bounds history.

Compaction layer: imports the board layer, merge (pure), merge_functions, reconcile and
retention; the CLI (``blackboard compactor``) imports it, never the other way round.

Each step: hold the lease (acquire it, or renew it), load the merge rules (given, or the
``merge`` tables of the policy stored at entry ``sys/policy``, re-read when its version
changes), run a reconcile round, and when a retention pass is due trim the log, a slice of
history and finished activations. Every write is fenced by the lease token, so a compactor
that lost its lease (paused, partitioned) writes nothing; a second compactor waits as a
standby and takes over when the lease runs out, which is also how a crash is recovered:
all state lives on the board. Time and sleeping are injected for tests.

Custom merge rules name a function; the compactor runs only functions on its own allow-list
(`merge_functions`: given, else ``Settings.merge_functions`` plus installed entry points),
reports a rule naming any other once when the rules load, and escalates its entries.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from blackboard import telemetry
from blackboard.board.client import Board
from blackboard.board.ops import Fence
from blackboard.board.retention import ActivationSweeper, HistorySweep, Retention, trim_log
from blackboard.compaction.activation_sweep import ActivationSweep
from blackboard.compaction.merge import CustomFunction, MergeRule, rules_from_document
from blackboard.compaction.merge_functions import MergeFunctions
from blackboard.compaction.reconcile import Reconciler, Report, RoundStats
from blackboard.errors import BlackboardError, LeaseLostError, MergePolicyError
from blackboard.store.keys import POLICY_KEY
from blackboard.store.lease import Lease

__all__ = ["POLICY_KEY", "Compactor", "CompactorStats", "merge_tables"]


def merge_tables(document: Any) -> dict[str, Any]:
    """The part of a stored policy the compactor reads: ``{"merge": [...]}``. The policy is
    a dict with a ``merge`` list, or a dict holding the TOML text under ``source``."""
    if isinstance(document, dict) and "merge" in document:
        return {"merge": document["merge"]}
    if isinstance(document, dict) and isinstance(document.get("source"), str):
        try:
            parsed = tomllib.loads(document["source"])
        except tomllib.TOMLDecodeError as exc:
            raise MergePolicyError(f"the stored policy is not TOML: {exc}") from None
        return {"merge": parsed.get("merge", [])}
    return {"merge": []}


@dataclass(slots=True)
class CompactorStats:
    """Totals of one `run()` (or of the steps since the compactor was made)."""

    steps: int = 0
    merged: int = 0
    escalated: int = 0
    resolved: int = 0
    conflicts: int = 0
    log_trimmed: int = 0
    history_trimmed: int = 0
    activations_cleared: int = 0
    leases: int = 0


class Compactor:
    """Reconciles divergent entries and applies retention on one board.

    `rules`: the merge rules; None reads them from the policy at ``sys/policy``. Human
    decisions on escalations are looked for every `escalation_every` seconds, retention
    passes run every `retention.every` seconds (both on the injected `clock`). `until_idle`
    runs of `run()` do both on every step and stop at the first step that finds nothing to
    do (for tests and scripts). `merge_functions`: the allow-list of custom merge functions
    (a `MergeFunctions`, or name -> ``"package.module:function"`` / callable, entry points
    included); default: the board's ``Settings.merge_functions`` and entry points. Raises
    MergePolicyError for a malformed allow-list."""

    def __init__(
        self,
        board: Board,
        *,
        rules: Sequence[MergeRule] | None = None,
        retention: Retention | None = None,
        name: str | None = None,
        interval: float = 0.5,
        lease_ttl: float = 10.0,
        batch: int = 500,
        report: Report | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        activation_sweeper: ActivationSweeper | None = None,
        escalation_every: float = 1.0,
        merge_functions: MergeFunctions | Mapping[str, str | CustomFunction] | None = None,
    ) -> None:
        if not isinstance(merge_functions, MergeFunctions):
            merge_functions = MergeFunctions(
                board.settings.merge_functions if merge_functions is None else merge_functions
            )
        self.merge_functions = merge_functions
        self.name = name or board.writer
        self.board = board.bind(writer=self.name)
        self.retention = retention or Retention()
        self.interval = interval
        self.escalation_every = escalation_every
        self.report: Report = report or (lambda _msg: None)
        self.clock = clock
        self._sleep = sleep
        k = self.board.keys_
        self.lease = Lease(board.redis, k.compactor_lease, k.compactor_epoch, self.name, lease_ttl)
        self.stats = CompactorStats()
        self._static_rules = tuple(rules) if rules is not None else None
        self._rules: tuple[MergeRule, ...] = self._static_rules or ()
        self._policy_version: int | None = None
        self._reconciler = Reconciler(
            self.board, self.report, batch=batch, functions=self.merge_functions
        )
        self._checked: tuple[MergeRule, ...] | None = None
        self._history = HistorySweep(self.board, self.retention)
        self._sweeper = activation_sweeper or ActivationSweep(self.retention.scan)
        self._next_retention = 0.0
        self._next_escalation_check = 0.0
        self._standby_noted = False

    @property
    def fence(self) -> Fence:
        """The fence of the compactor's writes: the lease's key must hold its token (mode
        'eq'). Raises LeaseLostError when the lease is not held."""
        return Fence("eq", self.lease.key, self.lease.held_token())

    async def rules(self) -> tuple[MergeRule, ...]:
        """The merge rules in force; a bad stored policy is reported and the old rules stay."""
        rules = await self._load_rules()
        if rules != self._checked:
            self._checked = rules
            self._check_functions(rules)
        return rules

    def _check_functions(self, rules: Sequence[MergeRule]) -> None:
        """Report, once per rule set, each custom rule whose function cannot be used."""
        for rule in rules:
            if rule.strategy == "custom" and rule.function is not None:
                try:
                    self.merge_functions.resolve(rule.function)
                except MergePolicyError as exc:
                    self.report(f"merge rule {rule.pattern!r}: {exc}; its entries escalate")

    async def _load_rules(self) -> tuple[MergeRule, ...]:
        if self._static_rules is not None:
            return self._static_rules
        entry = await self.board.get(POLICY_KEY)
        version = entry.version if entry is not None else 0
        if version == self._policy_version:
            return self._rules
        self._policy_version = version
        try:
            rules = rules_from_document(merge_tables(entry.value if entry else None))
        except MergePolicyError as exc:
            self.report(f"policy {POLICY_KEY} v{version}: {exc}; keeping the earlier rules")
            return self._rules
        if rules != self._rules:
            self._rules = rules
            self._reconciler.reset()
            where = f"{POLICY_KEY} v{version}" if entry else f"no {POLICY_KEY}"
            self.report(f"merge rules from {where}: {len(rules)} rule(s)")
        return self._rules

    async def step(self, *, force_retention: bool = False) -> bool:
        """One round; True when it did something (merged, escalated, trimmed...).
        Raises BoardUnavailableError; a lost lease is reported, not raised."""
        self.stats.steps += 1
        had = self.lease.held
        if not await self.lease.acquire():
            if not self._standby_noted:
                self.report(f"standby: the lease is held by {self.lease.current}")
                self._standby_noted = True
            return False
        if not had:
            self.stats.leases += 1
            self._standby_noted = False
            self._reconciler.reset()
            self._reconciler.board = self.board = self.board.bind(fence=self.fence)
            self._history.board = self.board
            self.report(f"lease acquired: token {self.lease.token}")
        try:
            did = await self._work(force_retention)
        except LeaseLostError as exc:
            self.lease.token = ""
            self.report(f"lease lost ({exc.reason}); standing by")
            return False
        return did

    async def _work(self, force_retention: bool) -> bool:
        now = self.clock()
        check = force_retention or now >= self._next_escalation_check
        if check:
            self._next_escalation_check = now + self.escalation_every
        rs: RoundStats = await self._reconciler.round(await self.rules(), escalations=check)
        s = self.stats
        s.merged += rs.merged
        s.escalated += rs.escalated
        s.resolved += rs.resolved
        s.conflicts += rs.conflicts
        telemetry.compacted(
            merged=rs.merged, escalated=rs.escalated, resolved=rs.resolved, conflicts=rs.conflicts
        )
        did = rs.busy
        if self.retention.enabled and (force_retention or now >= self._next_retention):
            self._next_retention = now + self.retention.every
            did = await self._retain(int(now * 1000), full=force_retention) or did
        return did

    async def _retain(self, now_ms: int, *, full: bool = False) -> bool:
        """One retention pass; `full` sweeps all of the history, not one slice of it."""
        fence = self.fence
        r = self.retention
        did = False
        if r.log_max_events is not None or r.log_max_age is not None:
            trimmed = await trim_log(self.board, r, now_ms, fence)
            if trimmed.removed:
                did = True
                self.stats.log_trimmed += trimmed.removed
                telemetry.trimmed("log", trimmed.removed)
                held = f", held back by group {trimmed.held_by}" if trimmed.held_by else ""
                self.report(
                    f"log: trimmed {trimmed.removed} events, oldest kept revision "
                    f"{trimmed.oldest}{held}"
                )
        while True:
            swept = await self._history.step(now_ms, fence)
            if swept.removed:
                did = True
                self.stats.history_trimmed += swept.removed
                telemetry.trimmed("history", swept.removed)
                self.report(f"history: trimmed {swept.removed} versions of {swept.entries} entries")
            if not full or swept.sweep_done:
                break
        if r.activation_max_age is not None:
            cutoff = int(now_ms - r.activation_max_age * 1000)
            cleared = await self._sweeper(self.board, cutoff, fence)
            if cleared:
                did = True
                self.stats.activations_cleared += cleared
                telemetry.trimmed("activations", cleared)
                self.report(f"activations: cleared {cleared} finished")
        return did

    async def run(
        self, *, until_idle: bool = False, stop: asyncio.Event | None = None
    ) -> CompactorStats:
        """Step until `stop` is set (or, with `until_idle`, until a step finds nothing to do);
        then release the lease. Raises BoardUnavailableError."""
        stop = stop or asyncio.Event()
        self.stats = CompactorStats()
        try:
            while not stop.is_set():
                try:
                    did = await self.step(force_retention=until_idle)
                except BlackboardError as exc:
                    if until_idle:
                        raise
                    self.report(f"step failed: {exc}; retrying")
                    did = False
                if until_idle and not did:
                    break
                if not (until_idle or self._reconciler.backlog):
                    # rounds batch what arrived while pausing: pausing also when busy keeps
                    # the compactor's cost per merged entry low
                    await self._pause(stop)
        finally:
            await self.lease.release()  # a failure is ignored: it expires by itself
        return self.stats

    async def _pause(self, stop: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self._sleep(self.interval))
        stopper = asyncio.ensure_future(stop.wait())
        _done, pending = await asyncio.wait({sleeper, stopper}, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
