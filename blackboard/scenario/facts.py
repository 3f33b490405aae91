"""What a run recorded and what the board held at its end, as plain data (no I/O; imports
nothing of the engine). `collect.py` fills these from the board and the runner; the
invariant checks in `invariants.py` are pure functions over them, so tests can build facts
by hand (a lost write, a double effect, a stuck activation) and see each reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AckFact",
    "ActivationFact",
    "BoardFacts",
    "Facts",
    "ItemFacts",
    "ProcessFact",
    "Version",
]


@dataclass(frozen=True, slots=True)
class Version:
    """One retained version of an entry."""

    version: int
    time_ms: int
    value: Any
    deleted: bool = False
    writer: str = ""
    activation: str | None = None


@dataclass(slots=True)
class ItemFacts:
    """One work item: its entry, the entry that says it is done, and its keyed effects.

    Histories are oldest first; `*_oldest` is the oldest version the board still retains
    (1 unless history was trimmed; 0 when the entry does not exist at all)."""

    index: int
    board: str
    key: str
    created_ms: int | None
    final_key: str
    final_history: list[Version] = field(default_factory=list)
    final_oldest: int = 0
    effects: dict[str, tuple[bool, list[Version]]] = field(default_factory=dict)
    """once-effect key -> (optional, its retained versions)"""


@dataclass(frozen=True, slots=True)
class ActivationFact:
    id: str
    board: str
    role: str
    key: str
    state: str  # granted, retrying, done, failed (a dead letter: after its last attempt), cancelled
    escalated_from: str | None = None
    error: str | None = None
    attempt: int = 1
    """the run it is on (or ended with): 1, plus one per retry"""

    @property
    def retries(self) -> int:
        """Runs of it that failed and ran (or will run) again."""
        return max(0, self.attempt - 1)


@dataclass(frozen=True, slots=True)
class AckFact:
    """An acknowledged write next to what the board holds for that key now."""

    kind: str
    board: str
    key: str
    version: int
    value: Any
    stored: Version | None  # the acknowledged version as stored, if still retained
    current_version: int  # the key's current version (0: the entry is gone)
    oldest_retained: int  # oldest version still retained (0: the entry is gone)


@dataclass(slots=True)
class BoardFacts:
    name: str
    open_activations: list[str] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)  # role -> claimed, unsettled
    lag: dict[str, int] = field(default_factory=dict)  # role -> granted, never delivered
    waiting: int = 0  # candidates on the leading controller's agenda
    counters: dict[str, Any] = field(default_factory=dict)
    activations: list[ActivationFact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ProcessFact:
    """One process slot: how often it started, exits it did not expect, its final stop."""

    name: str
    kind: str
    starts: int
    crashes: list[str]  # exits nobody caused: "exit 1 at 12.3s"
    stop_code: int | None  # exit code after the final SIGTERM (None: not running then)
    fault_stops: list[int] = field(default_factory=list)  # exit codes of `stop` faults


@dataclass(slots=True)
class Facts:
    items: list[ItemFacts] = field(default_factory=list)
    acks: list[AckFact] = field(default_factory=list)
    boards: dict[str, BoardFacts] = field(default_factory=dict)
    processes: list[ProcessFact] = field(default_factory=list)
    items_expected: int = 0
    """items whose creation was acknowledged (the ones that must finish)"""
