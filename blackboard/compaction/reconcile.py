"""Reconciling entries with open proposals: the merge half of the compactor (compaction layer).

Imports the board layer (Board, proposals), merge (pure strategies) and merge_functions (the
allow-list a custom rule's function name is resolved through); never the CLI.

One `Reconciler.round()` looks at the entries whose proposals changed since the last round
(the ``proposed`` index is scored by the revision of each entry's latest proposal, so that is
one ZRANGEBYSCORE from a cursor) plus those whose merge lost a race last time, and for each
applies the first matching `MergeRule`:

- `Merged(value)`: one `merge.lua` commit, fenced by the compactor's lease, that writes the
  value and removes exactly the proposal versions it read (or nothing, if a proposer
  replaced one meanwhile: then it decides again). A proposal made meanwhile stays and has a
  newer revision, so the next round sees it: never lost, never merged twice.
- `Escalate(reason)`: an escalation entry ``sys/escalations/merge/<key>`` lists the
  proposals and the reason. A human (or a human-role agent, or `blackboard resolve`) sets
  its ``state`` to ``"decided"`` with a ``decision``; the next round merges that value over
  the listed proposals still open and deletes the escalation. A custom rule whose function
  name is not on the compactor's allow-list escalates too, with that reason.
- `Wait(reason)`, or no rule at all: the entry is left as it is and reported once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.proposals import proposed_keys
from blackboard.compaction.merge import (
    CustomFunction,
    Escalate,
    Merged,
    MergeRule,
    decide,
    find_rule,
)
from blackboard.compaction.merge_commit import (
    MergeRequest,
    MergeState,
    commit_merge,
    commit_merges,
    read_for_merge,
)
from blackboard.compaction.merge_functions import MergeFunctions
from blackboard.errors import (
    BlackboardError,
    ConflictError,
    EscalationNotFoundError,
    LeaseLostError,
    MergePolicyError,
)
from blackboard.store.entry import ABSENT, Entry, Proposal
from blackboard.store.keys import MAX_KEY_LENGTH

__all__ = ["ESCALATION_PREFIX", "Reconciler", "RoundStats", "escalation_key", "resolve_escalation"]

ESCALATION_PREFIX = "sys/escalations/merge/"
Report = Callable[[str], None]


def escalation_key(key: str) -> str:
    """The entry key of the merge escalation for entry `key` (hashed when too long)."""
    name = ESCALATION_PREFIX + key
    if len(name) <= MAX_KEY_LENGTH:
        return name
    return ESCALATION_PREFIX + "=" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


async def resolve_escalation(board: Board, key: str, value: Any) -> Entry:
    """Decide the open merge escalation of entry `key`: the compactor then writes `value` over
    the proposals it lists. Raises EscalationNotFoundError when there is none, ConflictError on a
    race."""
    name = escalation_key(key)
    found = await board.get(name)
    if found is None or not isinstance(found.value, dict):
        raise EscalationNotFoundError(key)
    doc = {**found.value, "state": "decided", "decision": value, "decided_by": board.writer}
    return await board.put(name, doc, expect=found.version)


@dataclass(slots=True)
class RoundStats:
    """What one round did."""

    examined: int = 0
    merged: int = 0
    escalated: int = 0
    resolved: int = 0
    waiting: int = 0
    unruled: int = 0
    conflicts: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.merged or self.escalated or self.resolved or self.conflicts)


def _listed(proposals: Sequence[Proposal]) -> list[dict[str, Any]]:
    return [
        {
            "proposer": p.proposer,
            "revision": p.revision,
            "value": p.value,
            "confidence": p.confidence,
        }
        for p in proposals
    ]


class Reconciler:
    """The merge work of one compactor on one board; `board` is a view fenced by its lease.
    `functions`: the allow-list custom rules' function names are resolved through (default:
    entry points only)."""

    def __init__(
        self,
        board: Board,
        report: Report,
        *,
        batch: int = 500,
        functions: MergeFunctions | None = None,
    ) -> None:
        self.board = board
        self.functions = functions if functions is not None else MergeFunctions()
        self.report = report
        self.batch = batch
        self._after: int | None = None
        self.backlog = False  # the last round stopped at `batch` keys: more are waiting
        self._retry: set[str] = set()
        self._noted: dict[str, str] = {}
        self._escalations: dict[str, int] = {}

    def reset(self) -> None:
        """Look at every entry with open proposals again (new lease, new rules)."""
        self._after = None
        self._noted.clear()
        self._escalations.clear()

    def _note(self, key: str, message: str) -> None:
        if self._noted.get(key) != message:
            self._noted[key] = message
            self.report(message)

    async def round(self, rules: Sequence[MergeRule], *, escalations: bool = True) -> RoundStats:
        """Reconcile what changed since the last round: one pipelined read of the entries
        and their proposals, then one pipelined send of the merge commits. Raises
        LeaseLostError when the lease is gone (nothing was written without it),
        BoardUnavailableError."""
        stats = RoundStats()
        changed = await proposed_keys(self.board, after=self._after, limit=self.batch)
        candidates = [key for key, _ in changed]
        candidates += sorted(self._retry.difference(candidates))
        self._retry.clear()
        if candidates:
            try:
                flags: Any = await self.board.redis.zmscore(self.board.keys_.divergent, candidates)
            except RedisError as exc:
                raise wrap_redis_error(exc) from exc
            work: list[tuple[str, MergeRule]] = []
            for key, flag in zip(candidates, flags, strict=True):
                stats.examined += 1
                rule = find_rule(rules, key)
                if rule is None:
                    if flag is not None:
                        stats.unruled += 1
                        self._note(key, f"{key}: divergent, and no merge rule matches: left alone")
                elif flag is not None or rule.settles == "all":
                    work.append((key, rule))
            await self._reconcile(work, stats)
        if changed:
            self._after = changed[-1][1]
        self.backlog = len(changed) >= self.batch
        if escalations:  # look for human decisions (the caller spaces these checks out)
            await self._decided_escalations(stats)
        return stats

    def _function(self, rule: MergeRule) -> CustomFunction | None:
        """The allowed function a custom rule names; raises MergePolicyError otherwise."""
        if rule.strategy != "custom" or rule.function is None:
            return None
        return self.functions.resolve(rule.function)

    async def _reconcile(self, work: list[tuple[str, MergeRule]], stats: RoundStats) -> None:
        states = await read_for_merge(self.board, [key for key, _ in work])
        merges: list[tuple[MergeRequest, MergeRule]] = []
        for (key, rule), state in zip(work, states, strict=True):
            if isinstance(state, BlackboardError):
                self._note(key, f"{key}: cannot be read ({state}): left alone")
                continue
            if not state.proposals:
                continue
            try:
                decision = decide(rule, state.value, state.proposals, self._function(rule))
            except MergePolicyError as exc:
                decision = Escalate(str(exc))
            if isinstance(decision, Merged):
                req = MergeRequest(
                    key, state.version, decision.value, state.proposals, rule.strategy
                )
                merges.append((req, rule))
            elif isinstance(decision, Escalate):
                await self._escalate(key, rule, state, decision.reason, stats)
            else:
                stats.waiting += 1
                self._note(key, f"{key}: waiting ({decision.reason})")
        if not merges:
            return
        results = await commit_merges(self.board, [req for req, _ in merges], self.board.fence)
        for (req, rule), done in zip(merges, results, strict=True):
            key = req.key
            if isinstance(done, LeaseLostError):
                raise done
            if isinstance(done, ConflictError) or done is None:
                # the entry moved under the merge, or a proposer replaced its proposal
                stats.conflicts += 1
                self._retry.add(key)
                continue
            if isinstance(done, BlackboardError):
                self._note(key, f"{key}: merge failed ({done}): left alone")
                continue
            stats.merged += 1
            self._noted.pop(key, None)
            self.report(
                f"{key}: merged {done.merged} proposals by {rule.strategy} into version "
                f"{done.version} at revision {done.revision}"
                + (f"; {done.open} arrived meanwhile and stay open" if done.open > 0 else "")
            )
            if escalation_key(key) in self._escalations:
                await self._drop_escalation(escalation_key(key))

    async def _escalate(
        self, key: str, rule: MergeRule, state: MergeState, reason: str, stats: RoundStats
    ) -> None:
        name = escalation_key(key)
        existing = await self.board.get(name)
        listed = _listed(state.proposals)
        if existing is not None and isinstance(existing.value, dict):
            if existing.value.get("state") == "decided":
                return  # a decision is waiting to be applied
            if existing.value.get("proposals") == listed:
                return  # already escalated for exactly these proposals
        doc = {
            "kind": "merge",
            "key": key,
            "state": "open",
            "reason": reason,
            "strategy": rule.strategy,
            "entry_version": state.version,
            "proposals": listed,
            "decision": None,
        }
        try:
            written = await self.board.put(
                name, doc, expect=existing.version if existing is not None else ABSENT
            )
        except ConflictError:
            stats.conflicts += 1
            self._retry.add(key)
            return
        self._escalations[name] = written.version
        stats.escalated += 1
        self.report(f"{key}: escalated to a human ({reason}) as {name}")

    async def _drop_escalation(self, name: str) -> None:
        version = self._escalations.pop(name, None)
        try:
            found = await self.board.get(name)
            if found is not None:
                await self.board.delete(name, expect=found.version if version is None else version)
        except ConflictError:
            pass  # changed meanwhile (decided?): the next round looks at it again

    async def _decided_escalations(self, stats: RoundStats) -> None:
        names = await self.board.keys(ESCALATION_PREFIX + "*")
        if not names:
            self._escalations.clear()
            return
        try:
            async with self.board.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hget(self.board.keys_.entry(name), "v")
                versions = await pipe.execute()
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        seen = {}
        for name, raw in zip(names, versions, strict=True):
            version = int(raw or 0)
            seen[name] = version
            if self._escalations.get(name) == version:
                continue
            found = await self.board.get(name)
            if found is None or not isinstance(found.value, dict):
                continue
            decided = found.value.get("state") == "decided" and "decision" in found.value
            if decided and not await self._apply_decision(name, found, stats):
                seen.pop(name)  # not applied yet: look again next round
        self._escalations = seen

    async def _reopen(
        self, name: str, found: Entry, seen: int, current: int, stats: RoundStats
    ) -> bool:
        key = found.value.get("key", "?")
        doc = {
            **found.value,
            "state": "open",
            "decision": None,
            "entry_version": current,
            "reason": f"the entry changed from version {seen} to {current} after the human "
            f"decided ({found.value.get('decided_by', '?')}); decide again",
        }
        try:
            written = await self.board.put(name, doc, expect=found.version)
        except ConflictError:
            return False
        self._escalations[name] = written.version
        stats.conflicts += 1
        self.report(f"{key}: decision on version {seen} not applied, version {current} is there")
        return True

    async def _apply_decision(self, name: str, found: Entry, stats: RoundStats) -> bool:
        doc = found.value
        key = str(doc.get("key", ""))
        listed = {(str(p["proposer"]), int(p["revision"])) for p in doc.get("proposals", [])}
        for _ in range(3):
            # the listed proposals their proposers have not replaced since; the rest stay open
            still_open = [
                p for p in await self.board.proposals(key) if (p.proposer, p.revision) in listed
            ]
            if not still_open:
                break
            entry = await self.board.get(key)
            current = entry.version if entry is not None else 0
            seen = doc.get("entry_version")
            if isinstance(seen, int) and seen != current:
                # the human decided about another version than the one there now: never
                # write their value over a change they did not see; ask again
                return await self._reopen(name, found, seen, current, stats)
            try:
                done = await commit_merge(
                    self.board,
                    key,
                    current,
                    doc["decision"],
                    still_open,
                    "human",
                    self.board.fence,
                )
            except ConflictError:
                continue
            if done is not None:
                stats.resolved += 1
                self.report(
                    f"{key}: human decision by {doc.get('decided_by', '?')} merged over "
                    f"{done.merged} proposals into version {done.version}"
                )
                break
        else:
            stats.conflicts += 1
            return False
        try:
            await self.board.delete(name, expect=found.version)
        except ConflictError:
            return False
        return True
