"""What the board holds and reports: entries, changes, causation, expectations (no I/O).

These are plain frozen dataclasses; the board layer builds them from stored records with
`blackboard.store.codec` and hands them to callers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ABSENT", "ANY", "Causation", "Change", "Entry", "Expect", "Proposal"]


class Expect(enum.Enum):
    """Expectations that are not a version number."""

    ABSENT = "absent"
    ANY = "any"

    def __repr__(self) -> str:
        return f"blackboard.{self.name}"


ABSENT = Expect.ABSENT
"""Expect no live entry: create only (a deleted entry counts as absent)."""
ANY = Expect.ANY
"""Expect nothing: a blind write (a delete still needs a live entry)."""


@dataclass(frozen=True, slots=True)
class Causation:
    """Why a write happened: the activation that made it, its causal depth and the W3C
    traceparent of the span that wrote it (set while tracing, see blackboard.telemetry)."""

    activation: str | None = None
    depth: int = 0
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One version of one key. `value` is a model instance when a schema is bound."""

    key: str
    value: Any
    version: int
    revision: int
    writer: str
    time_ms: int
    schema: str | None = None
    schema_version: int | None = None
    causation: Causation | None = None
    deleted: bool = False
    kind: str = "put"

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Change:
    """One entry operation in the change log; a commit of n operations gives n changes."""

    revision: int
    key: str
    version: int
    kind: str
    value: Any
    writer: str
    time_ms: int
    activation: str | None = None
    trace: str | None = None  # W3C traceparent of the writer's span, when it traced

    @property
    def deleted(self) -> bool:
        return self.kind == "delete"

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Proposal:
    """One proposer's open proposal for an entry (see `board.propose`).

    `revision` is the board revision of the commit that made it: it names this version of
    the proposal, so a merge removes exactly the versions it read. `base_version` is the
    entry's version when the proposal was made (0 when the entry did not exist).
    """

    key: str
    proposer: str
    value: Any
    confidence: float | None
    revision: int
    time_ms: int
    base_version: int = 0
    causation: Causation | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ms / 1000, tz=UTC)
