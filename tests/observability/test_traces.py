"""One trace per item across the writer, the controller and two agents of different roles,
carried by the board (traceparent on the log event, the activation and the causation)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from runners import eventually, running

import blackboard
from blackboard import telemetry
from blackboard.control.activation import activation_id
from blackboard.control.decisions import read_activation
from blackboard.telemetry.traceparent import parse_traceparent

POLICY = """
name = "traced"
[[rule]]
name = "triage"
on = "ticket/*"
role = "triage"
[[rule]]
name = "resolve"
on = "triaged/*"
role = "resolver"
"""


class Triage(blackboard.Agent):
    role = "triage"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        with telemetry.span("classify", model="rules"):
            category = "billing"
        await board.put(f"triaged/{activation.key[7:]}", {"category": category})


class Resolver(blackboard.Agent):
    role = "resolver"

    def handle(self, activation: blackboard.Activation, board: Any) -> None:  # sync: a thread
        with telemetry.span("lookup"):
            board.put(f"resolved/{activation.key[8:]}", {"ok": True})


def _one(found: list[ReadableSpan], name: str, **attrs: Any) -> ReadableSpan:
    hits = [
        s
        for s in found
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attrs.items())
    ]
    assert len(hits) == 1, f"{name} {attrs}: {[(s.name, s.attributes) for s in found]}"
    return hits[0]


def _ids(traceparent: str | None) -> tuple[int, int] | None:
    """(trace id, span id) of a sampled traceparent."""
    parsed = parse_traceparent(traceparent)
    assert parsed is not None and parsed[2] & 1, traceparent
    return parsed[0], parsed[1]


def _parent_of(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.parent is not None, f"{child.name} has no parent"
    assert parent.context is not None and child.context is not None
    assert child.parent.span_id == parent.context.span_id, f"{child.name} <- {parent.name}"
    assert child.context.trace_id == parent.context.trace_id
    assert (child.start_time or 0) >= (parent.start_time or 0) - 2_000_000  # clocks: 2 ms


async def test_one_trace_links_writer_controller_and_two_agents(
    board: blackboard.Board, spans: InMemorySpanExporter
) -> None:
    async with running(board, POLICY, [Triage(), Resolver()]):
        written = await board.put("ticket/1", {"subject": "refund"})
        await eventually(lambda: board.get("resolved/1"), what="resolved/1")
    found = list(spans.get_finished_spans())
    commit = _one(found, f"commit {board.name}", **{"blackboard.key": "ticket/1"})
    assert commit.kind is SpanKind.PRODUCER
    assert commit.attributes and commit.attributes["blackboard.revision"] == written.revision
    grant1 = _one(found, "grant triage", **{"blackboard.key": "ticket/1"})
    run1 = _one(found, "process triage")
    classify = _one(found, "classify")
    grant2 = _one(found, "grant resolver")
    run2 = _one(found, "process resolver")
    lookup = _one(found, "lookup")
    # writer commit -> grant -> claim and run -> user span; the run's commit -> next grant
    for child, parent in [
        (grant1, commit), (run1, grant1), (classify, run1), (grant2, run1), (run2, grant2),
        (lookup, run2),
    ]:  # fmt: skip
        _parent_of(child, parent)
    assert grant1.kind is SpanKind.PRODUCER and run1.kind is SpanKind.CONSUMER
    attrs = dict(grant1.attributes or {})
    assert attrs["messaging.operation.type"] == "send"
    assert attrs["messaging.destination.name"] == "triage"
    assert attrs["messaging.message.id"] == activation_id("triage", "ticket/1", 1)
    assert attrs["blackboard.rule"] == "triage"
    assert "loop guard" in str(attrs["blackboard.reasons"])
    run_attrs = dict(run1.attributes or {})
    assert run_attrs["messaging.operation.type"] == "process"
    assert run_attrs["blackboard.outcome"] == "succeeded"
    # the board carries the context: the entry's causation names the run's span, and the
    # activation record the grant's
    assert commit.context is not None and run1.context is not None
    trace_id = commit.context.trace_id
    entry = await board.get("triaged/1")
    assert entry is not None and entry.causation is not None
    assert _ids(entry.causation.trace) == (trace_id, run1.context.span_id)
    record = await read_activation(board, activation_id("resolver", "triaged/1", 1))
    assert record is not None and grant2.context is not None
    assert _ids(record["trace"]) == (trace_id, grant2.context.span_id)


async def test_an_untraced_process_passes_the_trace_on(
    board: blackboard.Board, spans: InMemorySpanExporter
) -> None:
    """A writer that traces; controller and agents that do not: the activation and the
    agent's commit still carry the writer's traceparent."""
    written_trace = ""
    with telemetry.span("request") as root:
        written_trace = telemetry.current_trace() or ""
        await board.put("ticket/2", {"subject": "late"})
    assert root is not None and written_trace
    telemetry.disable()
    async with running(board, POLICY, [Triage()]):
        await eventually(lambda: board.get("triaged/2"), what="triaged/2")
    record = await read_activation(board, activation_id("triage", "ticket/2", 1))
    assert record is not None
    commit_trace = parse_traceparent(record["trace"])
    request = parse_traceparent(written_trace)
    assert commit_trace is not None and request is not None
    assert commit_trace[0] == request[0]  # the same trace, through the untraced controller
    entry = await board.get("triaged/2")
    assert entry is not None and entry.causation is not None and entry.causation.trace
    assert parse_traceparent(entry.causation.trace) == commit_trace


async def test_a_batch_traces_each_commit(
    board: blackboard.Board, spans: InMemorySpanExporter
) -> None:
    async with board.batch() as batch:
        batch.put("a/1", 1)
        batch.put("a/2", 2)
    found = [s for s in spans.get_finished_spans() if s.name == f"commit {board.name}"]
    assert sorted((s.attributes or {})["blackboard.key"] for s in found) == ["a/1", "a/2"]
    for s in found:
        entry = await board.get(str((s.attributes or {})["blackboard.key"]))
        assert entry is not None and entry.causation is not None and s.context is not None
        assert _ids(entry.causation.trace) == (s.context.trace_id, s.context.span_id)
        assert (s.attributes or {})["blackboard.revision"] == entry.revision


async def test_an_unsampled_trace_is_passed_on_without_spans(board: blackboard.Board) -> None:
    """A writer that samples nothing: the controller and the agents make no spans of that
    trace, and carry its context on, so the sampling decision holds end to end."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.enable(provider, metrics=False)
    try:
        await board.put("ticket/3", {"subject": "slow"})
        async with running(board, POLICY, [Triage(), Resolver()]):
            await eventually(lambda: board.get("resolved/3"), what="resolved/3")
        written = await board.get("ticket/3")
        resolved = await board.get("resolved/3")
    finally:
        telemetry.disable()
        provider.shutdown()
    assert exporter.get_finished_spans() == ()
    assert written is not None and written.causation is not None
    assert resolved is not None and resolved.causation is not None
    first, last = (
        parse_traceparent(written.causation.trace),
        parse_traceparent(resolved.causation.trace),
    )
    assert first is not None and last is not None
    assert first[0] == last[0] and not first[2] & 1 and not last[2] & 1
