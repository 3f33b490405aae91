"""Hooks of the board: a producer span per commit, the traceparent it records, commit
counts, user spans (bottom layer; imports telemetry.state).

A commit made inside a span records that span's traceparent with each entry's causation
and on the change log event (`current_trace`); the controller continues the trace from
there. `commit_span` wraps one commit, `start_commit`/`end_commits` the commits of a batch
(one span each, ended when the batch's round trip returns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from blackboard.telemetry import state
from blackboard.telemetry.state import NULL, SYSTEM, Null, traceparent_of
from blackboard.telemetry.traceparent import format_traceparent

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "commit_span",
    "conflict",
    "current_trace",
    "end_commits",
    "forged",
    "replayed",
    "span",
    "start_commit",
]


def current_trace() -> str | None:
    """The traceparent of the current span, or None (tracing off, or no span)."""
    if state.tracer is None:
        return None
    ctx = state.api.trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format_traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags))


class CurrentSpan:
    """A span made current for the duration of a `with` block."""

    __slots__ = ("span", "token")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.token: object = None

    def __enter__(self) -> CurrentSpan:
        api = state.api
        self.token = api.context.attach(api.trace.set_span_in_context(self.span))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        api = state.api
        try:
            if exc is not None:
                self.span.record_exception(exc)
                self.span.set_status(api.Status(api.StatusCode.ERROR, type(exc).__name__))
            self.span.end()
        finally:
            api.context.detach(self.token)

    def done(self, revision: int) -> None:
        """Record the revision the commit got."""
        self.span.set_attribute("blackboard.revision", revision)


def span(name: str, **attributes: Any) -> CurrentSpan | Null:
    """A span for user code (e.g. inside a handler): ``with telemetry.span("call model"):``;
    it nests under the activation's span. Does nothing while tracing is off."""
    if state.tracer is None:
        return NULL
    return CurrentSpan(state.tracer.start_span(name, attributes=attributes or None))


def _attributes(board: str, key: str, ops: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "commit",
        "messaging.destination.name": board,
        "blackboard.key": key,
    }
    if ops > 1:
        attrs["messaging.batch.message_count"] = ops
    return attrs


def commit_span(board: str, key: str, ops: int = 1) -> CurrentSpan | Null:
    """A producer span around one commit on `board` of `ops` operations, the first on
    `key`, current while it runs (so the commit records its traceparent);
    ``.done(revision)`` notes the revision it got."""
    if state.tracer is None:
        return NULL
    return CurrentSpan(
        state.tracer.start_span(
            f"commit {board}",
            kind=state.api.SpanKind.PRODUCER,
            attributes=_attributes(board, key, ops),
        )
    )


def start_commit(board: str, key: str, ops: int = 1) -> tuple[Span | None, str | None]:
    """A producer span for one commit of a batch (not current) and its traceparent."""
    if state.tracer is None:
        return None, None
    s = state.tracer.start_span(
        f"commit {board}", kind=state.api.SpanKind.PRODUCER, attributes=_attributes(board, key, ops)
    )
    return s, traceparent_of(s)


def end_commits(spans: Sequence[Span | None], results: Sequence[Any]) -> None:
    """End the spans of a batch's commits with what each returned (entries or an error)."""
    for s, result in zip(spans, results, strict=False):
        if s is None:
            continue
        if isinstance(result, BaseException):
            s.set_status(state.api.Status(state.api.StatusCode.ERROR, type(result).__name__))
        elif isinstance(result, list) and result:
            s.set_attribute("blackboard.revision", getattr(result[0], "revision", 0))
        elif result is not None:
            s.set_attribute("blackboard.revision", getattr(result, "revision", 0))
        s.end()


def conflict(board: str) -> None:
    """A commit was refused on a version expectation."""
    if state.meters is not None:
        state.meters.conflicts[board] += 1


def replayed(board: str) -> None:
    """A commit was answered from its idempotency record."""
    if state.meters is not None:
        state.meters.replays[board] += 1


def forged(reader: str, n: int) -> None:
    """A reader dropped `n` events that no record backs."""
    if state.meters is not None and n:
        state.meters.forged[reader] += n
