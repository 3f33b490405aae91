"""Metrics in-process against a real server: counts by role and outcome, latencies, handler
duration, conflicts, idempotent replays, forged events, the controller's gauges."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from runners import eventually, running

import blackboard
from blackboard.control.decisions import controller_status

POLICY = """
name = "m"
[roles.worker]
breaker_failures = 100
[roles.worker.retry]
attempts = 3
base = 0.02
cap = 0.05
[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Flaky(blackboard.Agent):
    """Asks for a retry on its first run of each job, then succeeds."""

    role = "worker"
    concurrency = 4

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        if activation.attempt == 1:
            raise blackboard.Retry("warming up")
        await board.put(f"done/{activation.key[4:]}", {"attempt": activation.attempt})


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def _sum(points: dict[str, list[Any]], name: str, **attrs: Any) -> float:
    return sum(
        p.value if hasattr(p, "value") else p.count
        for p in points.get(name, [])
        if all(p.attributes.get(k) == v for k, v in attrs.items())
    )


async def test_role_counters_latencies_and_gauges(
    board: blackboard.Board, metrics: InMemoryMetricReader
) -> None:
    async with running(board, POLICY, [Flaky()]):
        for i in range(3):
            await board.put(f"job/{i}", {"i": i})

        async def done() -> bool:
            return len(await board.keys("done/*")) == 3

        await eventually(done, 15, "3 jobs done")
        await eventually(lambda: controller_status(board), 5, "a status")

        async def gauges() -> Any:
            p = _points(metrics)
            return p if "blackboard.breaker.state" in p else None

        points = await eventually(gauges, 5, "the controller's gauges")
    role = {"blackboard.role": "worker"}
    assert _sum(points, "blackboard.activations.granted", **role) == 3
    assert _sum(points, "blackboard.activations.started", **role) == 6  # 3 attempts 1 and 2
    ended = "blackboard.activations.ended"
    assert _sum(points, ended, **role, **{"blackboard.outcome": "retried"}) == 3
    assert _sum(points, ended, **role, **{"blackboard.outcome": "succeeded"}) == 3
    assert _sum(points, "blackboard.handler.duration", **role) == 6
    assert _sum(points, "blackboard.activation.claim_latency", **role) == 3  # first runs only
    assert _sum(points, "blackboard.activation.grant_latency", **role) == 3
    assert _sum(points, "blackboard.breaker.state", **role) == 0
    assert "blackboard.agenda.waiting" in points and "blackboard.activations.open" in points


async def test_conflicts_replays_and_forged_events(
    board: blackboard.Board, metrics: InMemoryMetricReader
) -> None:
    await board.put("k", 1, idempotency_key="once")
    await board.put("k", 1, idempotency_key="once")  # replayed
    with pytest.raises(blackboard.ConflictError):
        await board.put("k", 2, expect=blackboard.ABSENT)
    await board.redis.xadd(board.keys_.log, {"t": 1, "w": "x", "a": "", "n": 1, "k1": "z"})
    seen = [c async for c in board.watch("*", since=0, idle_timeout=0.2)]
    assert [c.key for c in seen] == ["k"]
    points = _points(metrics)
    on = {"blackboard.board": board.name}
    assert _sum(points, "blackboard.commit.replays", **on) == 1
    assert _sum(points, "blackboard.commit.conflicts", **on) == 1
    assert _sum(points, "blackboard.events.forged", **{"blackboard.reader": "watch"}) == 1
