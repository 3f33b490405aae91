"""The TUI's read model of escalations: everything waiting for a human (no textual).

Two kinds: activations the controller granted to the policy's human role and not finished
(read through `ControlReader.open_activations`), and the compactor's open merge escalations,
entries under ``sys/escalations/merge/`` (reconcile.py). Each item carries the value in
question and the entry's current version, so the view can show a stale item as stale and the
human desk can write against exactly what was shown. Imports the engine and
`blackboard.control.read`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blackboard.board.client import Board
from blackboard.compaction.reconcile import ESCALATION_PREFIX
from blackboard.control.read import ActivationInfo, ControlReader
from blackboard.errors import BlackboardError
from blackboard.store.entry import Entry

__all__ = ["EscalationItem", "merge_escalations", "read_escalations"]

MERGE_ESCALATION_LIMIT = 500


@dataclass(frozen=True, slots=True)
class EscalationItem:
    """Something waiting for a human.

    kind "activation": the controller escalated version `version` of `key` (low confidence
    from `from_role`) to the human role; `activation` says where it is queued.
    kind "merge": the compactor could not merge the proposals for `key`; `doc` is the
    escalation entry (`doc_key` at `doc_version`) listing them."""

    kind: str
    id: str
    key: str
    version: int
    value: Any
    reason: str
    time_ms: int
    current: Entry | None
    from_role: str | None = None
    activation: ActivationInfo | None = None
    doc_key: str | None = None
    doc_version: int = 0
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        """The entry moved on since the escalation (or was deleted)."""
        if self.kind != "activation":
            return False
        return self.current is None or self.current.version != self.version


async def read_escalations(control: ControlReader) -> list[EscalationItem]:
    """Everything waiting for a human: activations of the human role not finished, and
    the compactor's open merge escalations; oldest first."""
    human = await control.human_role()
    acts = [a for a in await control.open_activations() if a.role == human]
    acts = [a for a in acts if a.state != "settling"]
    out: list[EscalationItem] = []
    if acts:
        values = await _versions(control.board, [(a.key, a.version) for a in acts])
        current = await _current(control.board, [a.key for a in acts])
        for a in acts:
            ctx = a.context
            reason = "; ".join(a.why[-1:]) if a.why else a.rule
            if "confidence" in ctx:
                reason = (
                    f"confidence {ctx.get('confidence')} < {ctx.get('threshold')}"
                    f" from {a.escalated_from or '?'}"
                )
            out.append(
                EscalationItem(
                    kind="activation",
                    id=a.id,
                    key=a.key,
                    version=a.version,
                    value=values.get((a.key, a.version)),
                    reason=reason,
                    time_ms=a.granted_ms,
                    current=current.get(a.key),
                    from_role=a.escalated_from,
                    activation=a,
                )
            )
    out.extend(await merge_escalations(control))
    out.sort(key=lambda e: (e.time_ms, e.key))
    return out


async def merge_escalations(control: ControlReader) -> list[EscalationItem]:
    names = await control.board.keys(ESCALATION_PREFIX + "*", limit=MERGE_ESCALATION_LIMIT)
    docs = await _current(control.board, names)
    out = []
    for name in names:
        doc = docs.get(name)
        if doc is None or not isinstance(doc.value, dict):
            continue
        if doc.value.get("state") != "open":
            continue
        key = str(doc.value.get("key", ""))
        cur = await control.board.get(key) if key else None
        out.append(
            EscalationItem(
                kind="merge",
                id=name,
                key=key,
                version=int(doc.value.get("entry_version", 0) or 0),
                value=None,
                reason=str(doc.value.get("reason", "")),
                time_ms=doc.time_ms,
                current=cur,
                doc_key=name,
                doc_version=doc.version,
                doc=dict(doc.value),
            )
        )
    return out


async def _current(board: Board, keys: list[str]) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for key in dict.fromkeys(keys):
        e = await board.get(key)
        if e is not None:
            out[key] = e
    return out


async def _versions(board: Board, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}
    for key, version in dict.fromkeys(wanted):
        try:
            e = await board.get(key, version=version) if version > 0 else None
        except BlackboardError:
            e = None
        out[(key, version)] = None if e is None else e.value
    return out
