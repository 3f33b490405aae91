"""Reading the facts of a run from the board itself (scenario layer; imports the board,
control.read and control.decisions; and scenario.facts/workload/processes).

Entries are read with every retained version, tombstones included
(`read.retained_histories`); every activation record is read (`read.all_activations`: a dead
letter is a record in state failed). Nothing here writes.
"""

from __future__ import annotations

from typing import Any

from blackboard.board.client import Board
from blackboard.control import read
from blackboard.control.decisions import controller_status
from blackboard.scenario.facts import (
    AckFact,
    ActivationFact,
    BoardFacts,
    ItemFacts,
    ProcessFact,
    Version,
)
from blackboard.scenario.processes import Supervisor
from blackboard.scenario.workload import AckLog, Item

__all__ = ["History", "board_facts", "item_facts", "process_facts", "read_histories"]

History = tuple[int, list[Version]]
"""(oldest retained version, retained versions oldest first); (0, []) for no entry"""


async def read_histories(board: Board, keys: list[str]) -> dict[str, History]:
    """Every retained version of each key."""
    out: dict[str, History] = {}
    for key, h in (await read.retained_histories(board, keys)).items():
        versions = []
        for v in h.versions:
            e = v.entry
            act = e.causation.activation if e.causation else None
            versions.append(Version(e.version, e.time_ms, v.value, e.deleted, e.writer, act))
        out[key] = (h.oldest, versions)
    return out


async def _activations(board: Board) -> list[ActivationFact]:
    return [
        ActivationFact(
            r.id, board.name, r.role, r.key, r.state, r.escalated_from, r.error, r.attempt
        )
        for r in await read.all_activations(board)
    ]


async def board_facts(
    board: Board, roles: set[str], counters: set[str], *, activations: bool = True
) -> BoardFacts:
    """Open, claimed, undelivered and waiting activations, counters and (optionally) every
    activation record of `board`. Raises BoardUnavailableError."""
    facts = BoardFacts(board.name)
    facts.open_activations = await read.open_activation_ids(board)
    for role in sorted(roles):
        counts = await read.queue_counts(board, role)
        facts.pending[role], facts.lag[role] = counts.claimed, counts.queued
    status = await controller_status(board)
    facts.waiting = int(status.get("waiting", 0)) if status else 0
    for key in sorted(counters):
        entry = await board.get(key)
        facts.counters[key] = entry.value if entry is not None else None
    if activations:
        facts.activations = await _activations(board)
    return facts


async def item_facts(
    boards: dict[str, Board],
    items: list[Item],
    acklog: AckLog,
    final: tuple[str, str | None],
    effects: list[tuple[str, str | None, bool]],
    render: Any,
) -> tuple[list[ItemFacts], list[AckFact]]:
    """Facts of every acknowledged item and every acknowledged write.

    `final` is (key template, board or None = the item's); `effects` are (key template,
    board or None, optional); `render(template, item)` fills a template in."""
    acked = {(a.board, a.key) for a in acklog.items()}
    chosen = [it for it in items if (it.board, it.key) in acked]
    wanted: dict[str, list[str]] = {}
    for it in chosen:
        wanted.setdefault(it.board, []).append(it.key)
        fk = it.key if final[0] == "{key}" else render(final[0], it)
        wanted.setdefault(final[1] or it.board, []).append(fk)
        for tpl, b, _ in effects:
            wanted.setdefault(b or it.board, []).append(render(tpl, it))
    for a in acklog.acks:
        wanted.setdefault(a.board, []).append(a.key)
    hist: dict[tuple[str, str], History] = {}
    for b, keys in wanted.items():
        for k, h in (await read_histories(boards[b], keys)).items():
            hist[(b, k)] = h
    out = []
    for it in chosen:
        own = hist[(it.board, it.key)][1]
        created = own[0].time_ms if own and own[0].version == 1 else None
        fk = it.key if final[0] == "{key}" else render(final[0], it)
        oldest, versions = hist[(final[1] or it.board, fk)]
        facts = ItemFacts(it.index, it.board, it.key, created, fk, versions, oldest)
        for tpl, b, optional in effects:
            ek = render(tpl, it)
            facts.effects[f"{b or it.board}:{ek}"] = (optional, hist[(b or it.board, ek)][1])
        out.append(facts)
    acks = []
    for a in acklog.acks:
        oldest, versions = hist[(a.board, a.key)]
        stored = next((v for v in versions if v.version == a.version), None)
        current = versions[-1].version if versions else 0
        acks.append(AckFact(a.kind, a.board, a.key, a.version, a.value, stored, current, oldest))
    return out, acks


def process_facts(sup: Supervisor, stop_codes: dict[str, int]) -> list[ProcessFact]:
    """Crashes (exits nobody caused), `stop` fault exit codes and the final stop's codes."""
    out = []
    for m in sup.procs.values():
        crashes = [f"exited with code {e.code} on its own" for e in m.exits if not e.expected]
        stops = [e.code for e in m.exits if e.cause.startswith("stop")]
        out.append(
            ProcessFact(m.name, m.spec.kind, m.starts, crashes, stop_codes.get(m.name), stops)
        )
    return out
