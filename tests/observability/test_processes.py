"""Real processes on a real server: a controller and two agents of different roles export
spans (console exporter: one JSON object per line on stdout) that join the test writer's
trace; their Prometheus endpoints count by role; JSON logs carry the activation."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from processes import AGENTS, Procs
from prometheus_client.parser import text_string_to_metric_families
from runners import eventually
from traced_agents import POLICY

import blackboard
from blackboard.control.decisions import controller_status
from blackboard.control.policy_board import apply_policy
from blackboard.store.server import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def procs(
    single_server: RedisServer, board_name: str, tmp_path: Path
) -> AsyncIterator[Procs]:
    p = Procs(single_server.url, board_name, tmp_path)
    yield p
    codes = p.stop_all()
    bad = {n: (c, p.stderr(n)[-2000:]) for n, c in codes.items() if c != 0}
    assert not bad, bad


@pytest.fixture
async def board(single_server: RedisServer, board_name: str) -> AsyncIterator[blackboard.Board]:
    async with blackboard.connect(single_server.url, board=board_name, writer="test") as b:
        await apply_policy(b, POLICY, "traced.toml")
        yield b


def _start_system(procs: Procs, *extra: str, env: dict[str, str] | None = None) -> None:
    procs.start("ctl", "controller", "--name", "ctl", *extra, env=env)
    for role, cls in (("triage", "Triage"), ("resolver", "Resolver")):
        procs.start(role, "agent", "run", f"{AGENTS}:{cls}", "--name", role, *extra, env=env)


async def _ready(board: blackboard.Board) -> bool:
    agents: Any = await board.redis.hlen(board.keys_.agents)
    return agents >= 2 and await controller_status(board) is not None


async def _resolved(board: blackboard.Board, n: int) -> bool:
    return len(await board.keys("resolved/*")) >= n


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        v
        for (n, lbls), v in samples.items()
        if n == name and all((k, val) in lbls for k, val in labels.items())
    )


async def test_prometheus_endpoints_count_by_role(procs: Procs, board: blackboard.Board) -> None:
    _start_system(procs, "--metrics-port", "0")
    await eventually(lambda: _ready(board), 30, "controller and agents up")
    urls = {name: procs.metrics_url(name) for name in ("ctl", "triage", "resolver")}
    before = {n: await asyncio.to_thread(_scrape, u) for n, u in urls.items()}
    assert _value(before["triage"], "blackboard_activations_ended_total") == 0
    for i in range(5):
        await board.put(f"ticket/{i}", {"subject": "refund"})
    await eventually(lambda: _resolved(board, 5), 30, "5 tickets resolved")

    async def counted() -> Any:
        got = {n: await asyncio.to_thread(_scrape, u) for n, u in urls.items()}
        ended = "blackboard_activations_ended_total"
        ok = _value(got["resolver"], ended, blackboard_outcome="succeeded")
        return got if ok >= 5 else None

    after = await eventually(counted, 10, "the resolver's counters")
    ctl, triage, resolver = after["ctl"], after["triage"], after["resolver"]
    role = "blackboard_role"
    assert _value(ctl, "blackboard_activations_granted_total", **{role: "triage"}) == 5
    assert _value(ctl, "blackboard_activations_granted_total", **{role: "resolver"}) == 5
    assert _value(ctl, "blackboard_activation_grant_latency_seconds_count") == 10
    for samples, name in ((triage, "triage"), (resolver, "resolver")):
        assert _value(samples, "blackboard_activations_started_total", **{role: name}) == 5
        ended = "blackboard_activations_ended_total"
        assert _value(samples, ended, **{role: name, "blackboard_outcome": "succeeded"}) == 5
        assert _value(samples, "blackboard_handler_duration_seconds_count", **{role: name}) == 5
        assert _value(samples, "blackboard_activation_claim_latency_seconds_count") == 5

    async def gauges() -> Any:  # the controller publishes its status once a second
        got = await asyncio.to_thread(_scrape, urls["ctl"])
        return (
            got
            if _value(got, "blackboard_breaker_state", **{role: "triage"}) == 0
            and any(n == "blackboard_activations_open" for n, _ in got)
            else None
        )

    await eventually(gauges, 10, "the controller's gauges")


def _spans(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_one_trace_across_processes(
    procs: Procs, board: blackboard.Board, spans: InMemorySpanExporter
) -> None:
    _start_system(procs, "--log-format", "json", env={"OTEL_TRACES_EXPORTER": "console"})
    await eventually(lambda: _ready(board), 30, "controller and agents up")
    await board.put("ticket/1", {"subject": "refund"})  # traced here, in memory
    await eventually(lambda: _resolved(board, 1), 30, "ticket/1 resolved")
    codes = procs.stop_all()  # the exporters have written every span by exit
    assert set(codes.values()) == {0}, {n: procs.stderr(n)[-2000:] for n in codes}
    [commit] = [s for s in spans.get_finished_spans() if s.name.startswith("commit ")]
    assert commit.context is not None
    trace_id = f"0x{commit.context.trace_id:032x}"
    found: dict[str, dict[str, Any]] = {}
    for name in ("ctl", "triage", "resolver"):
        for s in _spans(procs.stdout(name)):
            assert s["context"]["trace_id"] == trace_id, s  # one trace, nothing else
            found[s["name"]] = s
    assert set(found) == {
        "grant triage", "process triage", "classify", "grant resolver", "process resolver",
        "lookup",
    }  # fmt: skip
    chain = [
        ("grant triage", f"0x{commit.context.span_id:016x}"),
        ("process triage", found["grant triage"]["context"]["span_id"]),
        ("classify", found["process triage"]["context"]["span_id"]),
        ("grant resolver", found["process triage"]["context"]["span_id"]),
        ("process resolver", found["grant resolver"]["context"]["span_id"]),
        ("lookup", found["process resolver"]["context"]["span_id"]),
    ]
    for name, parent in chain:
        assert found[name]["parent_id"] == parent, (name, found[name])
    order = [found[n]["start_time"] for n in ("grant triage", "process triage", "grant resolver")]
    assert order == sorted(order)
    assert found["process resolver"]["kind"] == "SpanKind.CONSUMER"
    assert found["grant resolver"]["attributes"]["messaging.operation.type"] == "send"
    # the handler's log line: JSON with the activation's fields and the trace id
    lines = [orjson.loads(x) for x in procs.stderr("triage").splitlines() if x.startswith("{")]
    [classified] = [x for x in lines if x["message"].startswith("classified")]
    assert classified["role"] == "triage" and classified["key"] == "ticket/1"
    assert classified["attempt"] == 1 and classified["activation"].startswith("triage:")
    assert classified["trace_id"] == trace_id[2:] and classified["agent"] == "triage"
    assert any(x["message"].startswith("agent triage of role triage started") for x in lines)
