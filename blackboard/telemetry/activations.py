"""Hooks of the controller, the agent runtime and the compactor: grant and run spans, the
counts and latencies by role, the log context of a run (bottom layer; imports
telemetry.state/logs/traceparent).

A grant is a producer span to the role's queue, child of the span that committed the
change (from the traceparent on the log event), from the candidate's admission to its
grant, with the rule and the guards' reasons; a refusal an instant span in the change's
trace. A run is a consumer span ("process"), child of the grant (from the traceparent on
the activation), current while the handler runs and commits.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from blackboard.telemetry import logs, state
from blackboard.telemetry.state import NULL, SYSTEM, Null, remote, traceparent_of, unsampled
from blackboard.telemetry.traceparent import trace_id_of

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "activation",
    "compacted",
    "controller_status",
    "granted",
    "handler",
    "refused",
    "trimmed",
]

ROLE = "blackboard.role"


class GrantLike(Protocol):
    """What `granted` reads of a candidate (`blackboard.control.agenda.Candidate`)."""

    activation_id: str
    role: str
    key: str
    version: int
    rule: str
    since: float
    reasons: list[str]
    trace: str
    changed_ms: int


def granted(cand: GrantLike, now: float) -> str:
    """Count a grant and make its span; returns the traceparent the activation carries
    (the candidate's own while tracing is off, so the trace passes through)."""
    m = state.meters
    if m is not None:
        m.granted[cand.role] += 1
        if cand.changed_ms:
            m.grant_latency.record(max(0.0, now - cand.changed_ms / 1000), {ROLE: cand.role})
    tracer = state.tracer
    if tracer is None or unsampled(cand.trace):
        return cand.trace
    end = time.time_ns()
    s = tracer.start_span(
        f"grant {cand.role}",
        context=remote(cand.trace),
        kind=state.api.SpanKind.PRODUCER,
        start_time=end - int(max(0.0, now - cand.since) * 1e9),
        attributes={
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "grant",
            "messaging.destination.name": cand.role,
            "messaging.message.id": cand.activation_id,
            "blackboard.key": cand.key,
            "blackboard.version": cand.version,
            "blackboard.rule": cand.rule,
            "blackboard.reasons": "; ".join(cand.reasons),
        },
    )
    s.end(end)
    return traceparent_of(s) or cand.trace


def refused(what: str, role: str, rule: str, key: str, reasons: list[str], trace: str) -> None:
    """A candidate or change was refused or left pending: an instant span in the change's
    trace (only for changes that carry one: no lone traces). A candidate held waiting gets
    none: its grant span starts at its admission and so covers the wait."""
    tracer = state.tracer
    if tracer is None or not trace or what == "waiting" or unsampled(trace):
        return
    tracer.start_span(
        f"{what} {role or '-'}",
        context=remote(trace),
        attributes={
            "blackboard.decision": what,
            ROLE: role,
            "blackboard.rule": rule,
            "blackboard.key": key,
            "blackboard.reasons": "; ".join(reasons),
        },
    ).end()


def controller_status(board: str, status: dict[str, Any]) -> None:
    """The status the leading controller just published (the gauges report the latest)."""
    if state.meters is not None:
        state.meters.status[board] = status


class ActivationLike(Protocol):
    """What `activation` reads of an activation (`blackboard.Activation`)."""

    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def delivery(self) -> int: ...
    @property
    def granted_ms(self) -> int: ...
    @property
    def trace(self) -> str: ...


_OUTCOMES = {"ok": "succeeded", "failed": "failed", "lost": "lost"}


class Run:
    """One run of an activation: its consumer span (current while it runs), its log
    context and its counts."""

    __slots__ = ("act", "consumer", "ctx_token", "outcome", "role", "span", "token")

    def __init__(self, role: str, consumer: str, act: ActivationLike) -> None:
        self.role, self.consumer, self.act = role, consumer, act
        self.span: Span | None = None
        self.token: object = None
        self.ctx_token: Any = None
        self.outcome = ("lost", "cancelled")

    def __enter__(self) -> Run:
        act, role = self.act, self.role
        m = state.meters
        if m is not None:
            m.started[role] += 1
            if act.attempt == 1 and act.delivery == 1 and act.granted_ms:
                latency = max(0.0, time.time() - act.granted_ms / 1000)
                m.claim_latency.record(latency, {ROLE: role})
        tracer = state.tracer
        if tracer is not None and unsampled(act.trace):
            # no span; the handler's spans and commit inherit the unsampled parent
            self.token = state.api.context.attach(remote(act.trace))
        elif tracer is not None:
            api = state.api
            self.span = s = tracer.start_span(
                f"process {role}",
                context=remote(act.trace),
                kind=api.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": SYSTEM,
                    "messaging.operation.type": "process",
                    "messaging.operation.name": "process",
                    "messaging.destination.name": role,
                    "messaging.consumer.group.name": "agents",
                    "messaging.message.id": act.id,
                    "blackboard.key": act.key,
                    "blackboard.attempt": act.attempt,
                    "blackboard.delivery": act.delivery,
                },
            )
            self.token = api.context.attach(api.trace.set_span_in_context(s))
        if logs.structured():
            fields: dict[str, Any] = {
                "role": role,
                "activation": act.id,
                "key": act.key,
                "attempt": act.attempt,
            }
            trace_id = trace_id_of(act.trace)
            if trace_id is not None:
                fields["trace_id"] = trace_id
            self.ctx_token = logs.LOG_CONTEXT.set(fields)
        return self

    def ended(self, status: str, retryable: bool = False, error: str | None = None) -> None:
        """How the run ended (`blackboard.Outcome` status; failed + retryable: retried)."""
        outcome = "retried" if status == "failed" and retryable else _OUTCOMES.get(status, status)
        self.outcome = (outcome, error or "")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        outcome, error = self.outcome
        if exc is not None:
            outcome, error = "lost", type(exc).__name__
        if state.meters is not None:
            state.meters.ended[(self.role, outcome)] += 1
        s = self.span
        if s is not None:
            api = state.api
            try:
                s.set_attribute("blackboard.outcome", outcome)
                if outcome != "succeeded":
                    s.set_status(api.Status(api.StatusCode.ERROR, error[:200] or outcome))
                s.end()
            finally:
                api.context.detach(self.token)
        elif self.token is not None:
            state.api.context.detach(self.token)
        if self.ctx_token is not None:
            logs.LOG_CONTEXT.reset(self.ctx_token)


def activation(role: str, consumer: str, act: ActivationLike) -> Run | Null:
    """Around one run of an activation by `consumer`:
    ``with activation(role, name, act) as run: ...; run.ended(status, retryable, error)``."""
    if state.tracer is None and state.meters is None and not logs.structured():
        return NULL
    return Run(role, consumer, act)


class _Timer:
    __slots__ = ("role", "t0")

    def __init__(self, role: str) -> None:
        self.role = role
        self.t0 = 0.0

    def __enter__(self) -> _Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if state.meters is not None:
            elapsed = time.perf_counter() - self.t0
            state.meters.handler_duration.record(elapsed, {ROLE: self.role})


def handler(role: str) -> _Timer | Null:
    """Around the handler call of one run: its duration goes to the histogram."""
    return NULL if state.meters is None else _Timer(role)


def compacted(**counts: int) -> None:
    """Count what a compactor round did (merged, escalated, resolved, conflicts)."""
    if state.meters is not None:
        for what, n in counts.items():
            if n:
                state.meters.compacted[what] += n


def trimmed(what: str, n: int) -> None:
    """Count what retention removed (log events, history versions, activations)."""
    if state.meters is not None and n:
        state.meters.trimmed[what] += n
