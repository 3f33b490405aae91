"""What a running system is doing, read from its board: the leading controller's last status,
the agents' heartbeats and the role queues (control layer; imports board, decisions, read).
The summary `blackboard top` shows, built on `control.read`; `rates` is pure.

Per role: agents alive, activations in flight, the agents' done/failed/lost counts (rates
come from two snapshots), activations queued for an agent and claimed, the controller's
open and waiting counts and the breaker. Controller lag is the board's revision less the
last revision the controller had read when it published its status (once a second).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from blackboard.board.client import Board
from blackboard.control.decisions import controller_status
from blackboard.control.read import heartbeats, queue_counts

__all__ = ["RoleStatus", "SystemStatus", "rates", "system_status"]

_COUNTS = ("done", "failed", "lost", "released")


@dataclass
class RoleStatus:
    """One role's numbers in a snapshot."""

    role: str
    agents: int = 0
    inflight: int = 0
    done: int = 0
    failed: int = 0
    lost: int = 0
    released: int = 0
    queued: int = 0  # on the queue, not delivered to an agent yet
    claimed: int = 0  # delivered and not acknowledged (running, or its agent died)
    open: int = 0  # granted and not finished, as the controller last said
    waiting: int = 0  # candidates on the controller's agenda
    breaker: str = "closed"


@dataclass
class SystemStatus:
    """A snapshot; `agents` maps each agent to its last heartbeat record."""

    board: str
    time_ms: int
    revision: int
    leader: str | None = None
    epoch: int = 0
    policy: str | None = None
    controller_revision: int = 0
    status_age_s: float | None = None
    roles: dict[str, RoleStatus] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def lag(self) -> int | None:
        """Log events the controller had not read (None without a controller)."""
        if self.leader is None:
            return None
        return max(0, self.revision - self.controller_revision)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lag"] = self.lag
        return out


async def system_status(board: Board, *, now: float | None = None) -> SystemStatus:
    """Read one snapshot. Raises BoardUnavailableError."""
    now = time.time() if now is None else now
    status = await controller_status(board)
    revision = await board.revision()
    beats = await heartbeats(board, on_corrupt="skip")  # a foreign record is not counted
    snap = SystemStatus(board.name, int(now * 1000), revision)
    if status is not None:
        snap.leader, snap.epoch = status.get("leader"), int(status.get("epoch") or 0)
        snap.policy = status.get("policy") or None
        snap.controller_revision = int(status.get("revision") or 0)
        snap.status_age_s = max(0.0, now - int(status.get("time_ms") or 0) / 1000)
        for role, r in dict(status.get("roles") or {}).items():
            rs = snap.roles.setdefault(role, RoleStatus(role))
            rs.open, rs.waiting = int(r.get("pending", 0)), int(r.get("waiting", 0))
            rs.breaker = str(r.get("breaker", "closed"))
    for agent, hb in beats.items():
        snap.agents[agent] = hb.record
        rs = snap.roles.setdefault(hb.role, RoleStatus(hb.role))
        rs.agents += 1
        rs.inflight += hb.inflight
        for counter in _COUNTS:
            setattr(rs, counter, getattr(rs, counter) + getattr(hb, counter))
    for role, rs in snap.roles.items():
        counts = await queue_counts(board, role)
        rs.queued, rs.claimed = counts.queued, counts.claimed
    return snap


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def rates(before: SystemStatus, after: SystemStatus) -> dict[str, dict[str, float]]:
    """Per role, done/failed/lost per second between two snapshots, from each agent's own
    counters (an agent that stopped in between is left out; one that started counts from
    zero)."""
    seconds = (after.time_ms - before.time_ms) / 1000
    out: dict[str, dict[str, float]] = {
        role: dict.fromkeys(("done", "failed", "lost"), 0.0) for role in after.roles
    }
    if seconds <= 0:
        return out
    for agent, now in after.agents.items():
        then = before.agents.get(agent)
        if then is None and _int(now.get("started_ms")) < before.time_ms:
            continue  # seen for the first time, running since before: no baseline
        role = out.setdefault(now["role"], dict.fromkeys(("done", "failed", "lost"), 0.0))
        for counter in ("done", "failed", "lost"):
            base = _int((then or {}).get(counter))
            role[counter] += max(0, _int(now.get(counter)) - base) / seconds
    return out
