"""Scenario files: the pydantic models of a scenario TOML document and `parse_scenario`
(pure: no I/O; imports policy, board.names, settings, errors and scenario.lines).

A scenario names one board (top-level ``board``, ``policy``, ``[[agent]]``...) or several
(``[[boards]]``), a server, a workload, a timeline of faults, a run length and the invariants
to check. A document that does not validate raises `ScenarioError` with the line it points
at. `scenario.load` reads the files a scenario names; docs/scenarios.md is the reference of
every field.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from blackboard.board.names import check_key
from blackboard.control.tomllines import locate
from blackboard.errors import BlackboardError
from blackboard.settings import Settings

__all__ = [
    "AgentSpec",
    "BoardSpec",
    "Fault",
    "Scenario",
    "ScenarioError",
    "Workload",
    "parse_scenario",
    "render",
]

FaultKind = Literal[
    "kill", "stop", "restart", "server-restart", "drop-connections", "latency", "lose-write"
]
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_RESERVED_SETTINGS = {"redis_url", "board"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\- ]{0,99}")


class ScenarioError(BlackboardError, ValueError):
    """A scenario file is invalid: fix it at `line` (None when unknown). Exit code 2."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"invalid scenario {where}: {reason}")


def render(template: str, i: int, board: str) -> str:
    """`template` with ``{i}`` (item number) and ``{board}`` (the item's board) filled in."""
    return template.replace("{i}", str(i)).replace("{board}", board)


def _check_template(template: str) -> str:
    for name in _PLACEHOLDER.findall(template):
        if name not in ("i", "board"):
            raise ValueError(f"{template!r}: use {{i}} and {{board}} only, not {{{name}}}")
    check_key(render(template, 0, "b"))
    return template


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ServerSpec(_Model):
    """Where the board lives: a URL, or (default) a private server the runner starts with
    TCP and AOF, so that it can be killed and restarted without losing acknowledged writes."""

    url: str | None = None
    appendonly: bool = True
    binary: str | None = None
    proxy: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> ServerSpec:
        if self.url is not None and self.binary is not None:
            raise ValueError("give url (an existing server) or binary (embedded), not both")
        return self


class AgentSpec(_Model):
    """`count` processes of one agent class; `latency`, `failure_rate` (transient: retried
    under the role's retry policy) and `permanent_failure_rate` (a dead letter at once) are
    passed to the agent as options (the reference agents simulate work and failures with
    them)."""

    spec: str
    role: str | None = None
    count: int = Field(1, ge=1, le=64)
    concurrency: int | None = Field(None, ge=1, le=1024)
    latency: float | None = Field(None, ge=0)
    failure_rate: float | None = Field(None, ge=0, le=1)
    permanent_failure_rate: float | None = Field(None, ge=0, le=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> AgentSpec:
        for name in ("latency", "failure_rate", "permanent_failure_rate"):
            if name in self.options and getattr(self, name) is not None:
                raise ValueError(f"{name} is given twice: as a key and in options")
        return self

    def agent_options(self) -> dict[str, Any]:
        opts = dict(self.options)
        for name in ("latency", "failure_rate", "permanent_failure_rate"):
            if getattr(self, name) is not None:
                opts[name] = getattr(self, name)
        return opts


class ControllerSpec(_Model):
    count: int = Field(1, ge=0, le=8)


class CompactorSpec(_Model):
    """Compactor processes and their retention window (0 switches a limit off)."""

    count: int = Field(1, ge=0, le=4)
    interval: float = Field(0.5, gt=0)
    lease_ttl: float = Field(3.0, gt=0)
    log_max_events: int = Field(0, ge=0)
    log_max_age: float = Field(3600.0, ge=0)
    history_max_age: float = Field(3600.0, ge=0)
    retention_every: float = Field(5.0, gt=0)


class BoardSpec(_Model):
    """One board of a multi-board scenario (``[[boards]]``)."""

    name: str
    policy: str
    controller: ControllerSpec = Field(default_factory=ControllerSpec)
    compactor: CompactorSpec = Field(default_factory=CompactorSpec)
    agents: list[AgentSpec] = Field(default_factory=list, alias="agent")


class WeightedValue(_Model):
    weight: float = Field(1.0, gt=0)
    value: dict[str, Any]


class FinalState(_Model):
    """When an item is done: the entry at `key` (on `board`, default the item's) exists, and
    when `field` is given its value's `field` (dotted path) equals `equals`."""

    key: str = "{key}"
    board: str | None = None
    field: str | None = None
    equals: Any = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return v if v == "{key}" else _check_template(v)

    @model_validator(mode="after")
    def _check(self) -> FinalState:
        if self.field is not None and self.equals is None:
            raise ValueError("field needs equals (the value meaning done)")
        return self


class Workload(_Model):
    """`items` work items written at `rate` per second (or all at once with ``burst``)."""

    items: int = Field(ge=1, le=1_000_000)
    rate: float | None = Field(None, gt=0)
    burst: bool = False
    key: str = "item/{i}"
    boards: list[str] = Field(default_factory=list)
    values: list[WeightedValue] = Field(min_length=1)
    final: FinalState = Field(default_factory=FinalState)
    probes: float = Field(10.0, ge=0, description="acknowledged probe writes per second")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if "{i}" not in v:
            raise ValueError(f"{v!r} must contain {{i}} (one entry per item)")
        return _check_template(v)

    @model_validator(mode="after")
    def _check(self) -> Workload:
        if self.burst and self.rate is not None:
            raise ValueError("give rate or burst = true, not both")
        if not self.burst and self.rate is None:
            raise ValueError("give rate (items per second) or burst = true")
        return self


class Fault(_Model):
    """One fault on the timeline, `at` seconds after the workload starts."""

    at: float = Field(ge=0)
    kind: FaultKind
    target: Literal["controller", "compactor", "agent"] | None = None
    role: str | None = None
    board: str | None = None
    index: int | None = Field(None, ge=0)
    restart_after: float | None = Field(None, gt=0)
    down_for: float = Field(1.0, ge=0)
    signal: Literal["kill", "term"] = "kill"
    ms: float | None = Field(None, ge=0)
    duration: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Fault:
        needs_target = self.kind in ("kill", "stop", "restart")
        if needs_target and self.target is None:
            raise ValueError(f"a {self.kind} fault needs target: controller, compactor or agent")
        if not needs_target and self.target is not None:
            raise ValueError(f"a {self.kind} fault takes no target")
        if self.target == "agent" and self.role is None:
            raise ValueError("target agent needs role (which agents)")
        if self.target != "agent" and self.role is not None:
            raise ValueError("role applies to target agent only")
        if self.restart_after is not None and self.kind not in ("kill", "stop"):
            raise ValueError("restart_after applies to kill and stop only")
        if self.kind == "latency" and self.ms is None:
            raise ValueError("a latency fault needs ms (milliseconds added each way)")
        if self.kind != "latency" and (self.ms is not None or self.duration is not None):
            raise ValueError("ms and duration apply to latency faults only")
        return self


class RunSpec(_Model):
    """How long: until every item is done (and every fault played), or for `duration`
    seconds; give up after `timeout`. `settle` bounds the wait for activations to finish."""

    until: Literal["done", "duration"] = "done"
    duration: float | None = Field(None, gt=0)
    timeout: float = Field(120.0, gt=0)
    settle: float = Field(15.0, ge=0)
    ready_timeout: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        if self.until == "duration" and self.duration is None:
            raise ValueError("until = 'duration' needs duration (seconds)")
        return self


class OnceSpec(_Model):
    """An effect keyed per item that must be written exactly once (one version)."""

    key: str
    board: str | None = None
    optional: bool = False

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _check_template(v)


class CounterSpec(_Model):
    """Counters whose sum must equal the number of items (or a number)."""

    keys: list[str] = Field(min_length=1)
    board: str | None = None
    equals: int | Literal["items"] = "items"


class Invariants(_Model):
    final_state: bool = True
    acknowledged_writes: bool = True
    no_stuck_activations: bool = True
    escalations: bool = True
    escalation_role: str | None = None
    escalation_counter: str | None = None
    clean_shutdown: bool = True
    allowed_failures: int = Field(0, ge=0)
    once: list[OnceSpec] = Field(default_factory=list)
    counter: list[CounterSpec] = Field(default_factory=list)


class Scenario(_Model):
    """A whole scenario document."""

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    seed: int = 0
    server: ServerSpec = Field(default_factory=ServerSpec)
    settings: dict[str, float | int | str | bool] = Field(default_factory=dict)
    board: str | None = None
    policy: str | None = None
    controller: ControllerSpec | None = None
    compactor: CompactorSpec | None = None
    agents: list[AgentSpec] = Field(default_factory=list, alias="agent")
    boards: list[BoardSpec] = Field(default_factory=list)
    workload: Workload
    faults: list[Fault] = Field(default_factory=list, alias="fault")
    run: RunSpec = Field(default_factory=RunSpec)
    invariants: Invariants = Field(default_factory=Invariants)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # the name becomes part of the run's log directory: no '/', no '..', nothing odd
        if not _NAME_RE.fullmatch(v):
            raise ValueError(
                f"{v!r}: use 1 to 100 of A-Z a-z 0-9 _ - . and spaces, starting with a letter "
                "or a digit"
            )
        return v

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        single = self.board is not None or self.policy is not None or self.agents
        if self.boards and single:
            raise ValueError("use [[boards]] or the single-board keys (board, policy, agent)")
        if not self.boards and (self.board is None or self.policy is None):
            raise ValueError("give board and policy (or [[boards]] tables)")
        unknown = sorted(set(self.settings) - set(Settings.model_fields))
        if unknown:
            raise ValueError(f"settings: no setting {unknown[0]!r} (see blackboard.Settings)")
        reserved = sorted(set(self.settings) & _RESERVED_SETTINGS)
        if reserved:
            raise ValueError(f"settings: {reserved[0]!r} is set by the runner")
        return self

    def board_specs(self) -> list[BoardSpec]:
        """Every board, the single-board shorthand turned into one `BoardSpec`."""
        if self.boards:
            return list(self.boards)
        assert self.board is not None and self.policy is not None
        return [
            BoardSpec(
                name=self.board,
                policy=self.policy,
                controller=self.controller or ControllerSpec(),
                compactor=self.compactor or CompactorSpec(),
                agents=self.agents,
            )
        ]


def _validation_error(exc: ValidationError, source: str, name: str) -> ScenarioError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "<document>"
    msg = first["msg"].removeprefix("Value error, ")
    return ScenarioError(name, locate(source, loc), f"{where}: {msg}")


def parse_scenario(source: str, name: str = "<scenario>") -> Scenario:
    """Parse and validate a scenario document (no files read). Raises ScenarioError."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ScenarioError(name, int(m.group(1)) if m else None, str(exc)) from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, source, name) from None
