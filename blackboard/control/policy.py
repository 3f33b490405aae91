"""Policy documents: the pydantic models of a TOML policy and its parsing (no I/O).

A policy says which roles may act on which changes: rules (a key pattern plus conditions on
the value grant an activation to a role, with a priority), per-role limits (backpressure
bound, rate, circuit breaker, escalation target) and the escalation threshold. A document
that does not validate raises `PolicyError` with the line it points at; the caller keeps the
policy it had. ``[[merge]]`` tables belong to the compactor and are kept here unvalidated.
Every pattern and value path is checked here with the functions the controller uses
(patterns.py), so an accepted policy cannot fail inside the controller. Bottom layer: imports
errors, keys, patterns and tomllines only.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from blackboard.control.patterns import check_path, check_rule_pattern
from blackboard.control.tomllines import NotUtf8Error, decode_utf8, locate
from blackboard.errors import PolicyError
from blackboard.store.keys import check_pattern

__all__ = [
    "OPERATORS",
    "Condition",
    "Consensus",
    "Escalation",
    "Policy",
    "RoleLimits",
    "Rule",
    "check_role",
    "decode_policy",
    "parse_policy",
    "policy_digest",
]

OPERATORS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "exists")
ChangeKind = Literal["put", "apply", "delete", "merge", "propose"]
_DEFAULT_KINDS: tuple[ChangeKind, ...] = ("put", "apply", "merge")
_ROLE_RE = re.compile(r"[A-Za-z0-9_\-.]{1,64}")
_TEMPLATE_RE = re.compile(r"\{([^{}]*)\}")


def check_role(role: str) -> str:
    """Return `role` if it is a valid role name (1-64 of A-Z a-z 0-9 _ - .); else ValueError."""
    if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
        raise ValueError(f"role {role!r} must be 1 to 64 characters from A-Z a-z 0-9 _ - .")
    return role


def _check_template(template: str) -> str:
    for name in _TEMPLATE_RE.findall(template):
        if name != "key" and not name.isdigit():
            raise ValueError(f"template {template!r}: use {{key}} or {{1}}..{{9}}, not {{{name}}}")
    return template


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Model):
    """One test on the value at `path` (dotted; '' is the whole value). Every operator given
    must hold. Comparisons hold only between two numbers or two strings."""

    path: str
    eq: Any = None
    ne: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    lt: float | str | None = None
    le: float | str | None = None
    gt: float | str | None = None
    ge: float | str | None = None
    exists: bool | None = None
    given: frozenset[str] = frozenset()

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_path(v)


class _WhenKeyError(ValueError):
    """An error about one key of a ``[rule.when]`` table: `parse_policy` points at its line."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def _conditions(when: Any) -> Any:
    """``[rule.when]`` as a table of path -> literal (equality) or an operator table."""
    if not isinstance(when, dict):
        return when
    out = []
    for path, test in when.items():
        try:
            check_path(path)
        except ValueError as exc:
            raise _WhenKeyError(path, str(exc)) from None
        if isinstance(test, dict):
            unknown = sorted(set(test) - set(OPERATORS))
            if unknown:
                raise _WhenKeyError(
                    path,
                    f"{path!r}: unknown operator {unknown[0]!r}; use {', '.join(OPERATORS)} "
                    "(compare a table for equality with {eq = {...}})",
                )
            if not test:
                raise _WhenKeyError(path, f"{path!r}: an empty operator table tests nothing")
            out.append({"path": path, **test, "given": frozenset(test)})
        else:
            out.append({"path": path, "eq": test, "given": frozenset({"eq"})})
    return out


class Consensus(_Model):
    """Act only when `k` of `n` proposals agree on `field`.

    source "entries": the proposals are the entries matching `group` (a pattern template,
    e.g. ``txn/{1}/verdict/*``); source "proposals": the open proposals of the changed entry
    (``board.proposals``). When all `n` are in and no `k` agree, `else_role` (if set) gets
    the activation instead; otherwise the candidate is refused."""

    k: int = Field(ge=1)
    n: int = Field(ge=1)
    source: Literal["entries", "proposals"] = "entries"
    group: str | None = None
    field: str = ""
    else_role: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Consensus:
        if self.k > self.n:
            raise ValueError(f"k={self.k} is more than n={self.n}")
        if self.source == "entries":
            if not self.group:
                raise ValueError("source 'entries' needs group, e.g. 'txn/{1}/verdict/*'")
            check_pattern(_TEMPLATE_RE.sub("x", _check_template(self.group)))
        if self.else_role is not None:
            check_role(self.else_role)
        check_path(self.field)
        return self


class Rule(_Model):
    """On a change to a key matching `on` whose value meets `when`, grant `role` an
    activation. `on` is a pattern where ``*`` matches within one ``/`` segment and ``**``
    across segments; templates (`resource`, `target`) use ``{key}`` and ``{1}``.. for the
    parts the wildcards matched."""

    name: str = Field(min_length=1, max_length=100)
    on: str
    role: str
    priority: int = 0
    when: list[Condition] = Field(default_factory=list)
    kinds: list[ChangeKind] = Field(default_factory=lambda: list(_DEFAULT_KINDS))
    resource: str = "{key}"
    target: str | None = None
    deadline: float | None = Field(None, gt=0)
    max_depth: int | None = Field(None, ge=0)
    consensus: Consensus | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, v: Any) -> Any:
        return _conditions(v)

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        return check_role(v)

    @field_validator("on")
    @classmethod
    def _on(cls, v: str) -> str:
        return check_rule_pattern(check_pattern(v))

    @field_validator("resource", "target")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        return None if v is None else _check_template(v)


RETRYABLE = ("error", "deadline", "conflict")


class RetryPolicy(_Model):
    """How a role's failed activations run again (docs/agents.md). A handler that raises
    `blackboard.Retry` is always retried while attempts last; `blackboard.Fail` never is; any
    other exception ("error") and a deadline overrun ("deadline") are retried when listed in
    `on`. The delay before attempt n+1 is full jitter: uniform in [0, min(cap, base * 2**n)],
    and at least the `after` a Retry asked for."""

    attempts: int = Field(5, ge=1, le=100, description="runs in all, the first included")
    base: float = Field(0.5, gt=0, description="first backoff, seconds")
    cap: float = Field(30.0, gt=0, description="largest backoff, seconds")
    on: list[str] = Field(
        default_factory=lambda: ["error", "deadline"],
        description="failures that retry besides blackboard.Retry: error, deadline",
    )

    @field_validator("on")
    @classmethod
    def _on(cls, v: list[str]) -> list[str]:
        for kind in v:
            if kind not in RETRYABLE:
                raise ValueError(f"unknown failure kind {kind!r}: use {', '.join(RETRYABLE)}")
        return v

    def retries(self, kind: str) -> bool:
        """Whether a failure of `kind` ('retry', 'error', 'deadline', 'fail') may run again."""
        return kind == "retry" or (kind in self.on and kind != "fail")


class RoleLimits(_Model):
    """Limits of one role: backpressure bound, rate, circuit breaker, escalation target,
    retry policy."""

    max_pending: int = Field(1000, ge=1)
    rate: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown: float = Field(10.0, gt=0)
    escalate_to: str | None = None
    threshold: float | None = None
    deadline: float | None = Field(None, gt=0)
    writes: list[str] | None = Field(
        None,
        description="entry key globs this role may write (Redis glob: * spans '/'); "
        "`blackboard acl generate` turns them into the role's ACL user; None = any entry",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("writes")
    @classmethod
    def _writes(cls, v: list[str] | None) -> list[str] | None:
        for pattern in v or []:
            check_pattern(pattern)
        return v

    @field_validator("escalate_to")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        return None if v is None else check_role(v)


class Escalation(_Model):
    """A value written by an activation whose `field` is below `threshold` (0 = off) goes to
    the role's ``escalate_to``, and past the last one to `human`.

    Only the results of the escalating roles are looked at: `roles` when given, else the
    roles whose limits set ``escalate_to`` or ``threshold``, else (no role sets either) every
    role. So a downstream role that copies a confidence field it was handed (a resolver
    quoting an answer a human already approved) does not escalate it again."""

    field: str = "confidence"
    threshold: float = Field(0.0, ge=0)
    human: str = "human"
    roles: list[str] | None = Field(None, description="roles whose results escalate")

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str] | None) -> list[str] | None:
        for role in v or []:
            check_role(role)
        return v

    @field_validator("human")
    @classmethod
    def _role(cls, v: str) -> str:
        return check_role(v)

    @field_validator("field")
    @classmethod
    def _field(cls, v: str) -> str:
        return check_path(v)


class Policy(_Model):
    """A whole policy document."""

    name: str = ""
    max_depth: int = Field(8, ge=0)
    aging: float = Field(1.0, ge=0, description="priority points a waiting candidate gains per s")
    deadline: float = Field(30.0, gt=0, description="default seconds an activation may take")
    escalation: Escalation = Field(default_factory=Escalation)
    roles: dict[str, RoleLimits] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list, alias="rule")
    merge: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: dict[str, RoleLimits]) -> dict[str, RoleLimits]:
        for role in v:
            check_role(role)
        return v

    @model_validator(mode="after")
    def _check(self) -> Policy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        for start in self.roles:
            chain, role = [start], self.roles[start].escalate_to
            while role is not None:
                if role in chain:
                    raise ValueError(f"escalation loops: {' -> '.join([*chain, role])}")
                chain.append(role)
                nxt = self.roles.get(role)
                role = nxt.escalate_to if nxt else None
        return self

    def limits(self, role: str) -> RoleLimits:
        return self.roles.get(role) or _DEFAULT_LIMITS

    def escalation_target(self, role: str) -> str | None:
        """Where a low-confidence result of `role` goes next; None for the human role."""
        if role == self.escalation.human:
            return None
        return self.limits(role).escalate_to or self.escalation.human

    def escalates(self, role: str) -> bool:
        """Whether low-confidence results of `role` escalate (see `Escalation`)."""
        if role == self.escalation.human:
            return False
        if self.escalation.roles is not None:
            return role in self.escalation.roles
        declared = [
            r
            for r, lim in self.roles.items()
            if lim.escalate_to is not None or lim.threshold is not None
        ]
        return role in declared if declared else True

    def threshold(self, role: str) -> float:
        """The confidence below which a result of `role` escalates (0: it never does)."""
        if not self.escalates(role):
            return 0.0
        limit = self.limits(role).threshold
        return self.escalation.threshold if limit is None else limit


_DEFAULT_LIMITS = RoleLimits()


def roles_of(policy: Policy) -> list[str]:
    """Every role the policy names: limits tables, rule targets, escalation, consensus."""
    roles = set(policy.roles)
    roles.add(policy.escalation.human)
    for rule in policy.rules:
        roles.add(rule.role)
        if rule.consensus is not None and rule.consensus.else_role:
            roles.add(rule.consensus.else_role)
    for limits in policy.roles.values():
        if limits.escalate_to:
            roles.add(limits.escalate_to)
    return sorted(roles)


def policy_digest(source: str) -> str:
    return hashlib.blake2b(source.encode(), digest_size=10).hexdigest()


def decode_policy(data: bytes, name: str = "<policy>") -> str:
    """The text of a policy file read as bytes; raises PolicyError naming the line of the
    first byte that is not UTF-8."""
    try:
        return decode_utf8(data)
    except NotUtf8Error as exc:
        raise PolicyError(name, exc.line, exc.reason) from None


def parse_policy(source: str, name: str = "<policy>") -> Policy:
    """Parse and validate a TOML policy document. Raises PolicyError naming the line."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise PolicyError(name, int(m.group(1)) if m else None, str(exc)) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc if p != "__root__") or "<document>"
        msg = first["msg"].removeprefix("Value error, ")
        cause = first.get("ctx", {}).get("error")
        line_loc = (*loc, cause.key) if isinstance(cause, _WhenKeyError) else loc
        raise PolicyError(name, locate(source, line_loc), f"{where}: {msg}") from None
