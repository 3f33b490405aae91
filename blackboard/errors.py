"""The exception tree of blackboard; the bottom layer, imports nothing of the package.

Every error the package raises derives from `BlackboardError` and carries the facts a
caller needs to decide what to do next::

    BlackboardError
    ├── InvalidKeyError            a key or board name breaks the documented charset/length
    ├── InvalidValueError          a value cannot be encoded, or is over the size limit
    │   └── ValidationError        a value does not validate against the key's schema
    ├── ConflictError              an expectation (version/absent) did not hold; nothing written
    │   └── RetryExhaustedError    update() gave up after its bounded attempts
    ├── IdempotencyKeyReusedError  an idempotency key came back with a different request
    ├── CorruptEntryError          the stored data under a key is not a blackboard entry
    ├── HistoryTrimmedError        a version/revision asked for is older than retention keeps
    ├── LeaseLostError             a fenced write whose claim or lease is no longer held
    │   └── StaleLeaseError        a lease-fenced batch met another token (key, found)
    ├── PermissionDeniedError      the Redis ACL user may not do this (NOPERM)
    ├── BoardUnavailableError      Redis cannot be reached or answered with an error
    │   ├── LibraryMissingError    the server lacks this client's functions library
    │   └── DurabilityError        a write was applied; too few replicas confirmed it
    ├── DurabilityUnsupportedError the server cannot give the durability level asked for
    ├── ServerNotFoundError        no URL given and no server binary to start one
    ├── TelemetryUnavailableError  telemetry asked for without OpenTelemetry installed
    ├── PolicyError                a policy document is invalid (file, line, reason)
    ├── MergePolicyError           invalid [[merge]] tables, or a merge function not allowed
    ├── EscalationNotFoundError    no merge escalation is open for the key to resolve
    ├── BoardNotEmptyError         an import into a board that holds data was refused
    ├── SnapshotError              a snapshot document cannot be read; nothing was imported
    ├── SecretFileError            a secrets directory or password file is unsafe or unusable
    ├── DeadlineExceededError      an agent's handler ran past its activation's deadline
    ├── Retry                      raised by a handler: try this activation again (transient)
    ├── Fail                       raised by a handler: never retry this activation
    ├── AgentLoadError             an agent given as ``path.py:Class`` cannot be loaded
    └── ActivationClosedError      a handler wrote after its activation ended (deadline)

`tests/test_error_tree.py` checks this tree against the classes, and `__all__` against both.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActivationClosedError",
    "AgentLoadError",
    "BlackboardError",
    "BoardNotEmptyError",
    "BoardUnavailableError",
    "ConflictError",
    "CorruptEntryError",
    "DeadlineExceededError",
    "DurabilityError",
    "DurabilityUnsupportedError",
    "EscalationNotFoundError",
    "Fail",
    "HistoryTrimmedError",
    "IdempotencyKeyReusedError",
    "InvalidKeyError",
    "InvalidValueError",
    "LeaseLostError",
    "LibraryMissingError",
    "MergePolicyError",
    "PermissionDeniedError",
    "PolicyError",
    "Retry",
    "RetryExhaustedError",
    "SecretFileError",
    "ServerNotFoundError",
    "SnapshotError",
    "StaleLeaseError",
    "TelemetryUnavailableError",
    "ValidationError",
]


class BlackboardError(Exception):
    """Root of every error raised by blackboard."""


class InvalidKeyError(BlackboardError, ValueError):
    """A key, pattern or board name is not allowed; fix the name, nothing was sent."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid key {key!r}: {reason}")


class InvalidValueError(BlackboardError, ValueError):
    """A value cannot be stored (not encodable, or too large); nothing was written."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid value for {key!r}: {reason}")


class ValidationError(InvalidValueError):
    """A value failed its schema; `errors` lists (field path, message) pairs."""

    def __init__(self, key: str, schema: str, errors: list[tuple[str, str]]) -> None:
        self.schema = schema
        self.errors = errors
        detail = "; ".join(f"{field or '<root>'}: {msg}" for field, msg in errors)
        super().__init__(key, f"does not match schema {schema}: {detail}")

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.errors]


class ConflictError(BlackboardError):
    """An expectation did not hold; nothing was written. Re-read and decide again.

    `expected` is a version number, or the strings "absent"/"any"; `actual` is the version
    found (0 when the key is absent or deleted). `current` is the entry found, when known.
    """

    def __init__(self, key: str, expected: Any, actual: int, current: Any = None) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        self.current = current
        super().__init__(f"conflict on {key!r}: expected version {expected}, found {actual}")


class RetryExhaustedError(ConflictError):
    """update() met a conflict on every one of its `attempts`; the key is too hot."""

    def __init__(self, key: str, expected: Any, actual: int, attempts: int) -> None:
        super().__init__(key, expected, actual)
        self.attempts = attempts
        self.args = (f"update of {key!r} gave up after {attempts} conflicting attempts",)


class IdempotencyKeyReusedError(BlackboardError):
    """An idempotency key was used before for a different request; pick a fresh key."""

    def __init__(self, idempotency_key: str) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(f"idempotency key {idempotency_key!r} was used for a different request")


class CorruptEntryError(BlackboardError):
    """The data stored under a key is not a readable blackboard entry."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"corrupt entry {key!r}: {reason}")


class HistoryTrimmedError(BlackboardError):
    """What was asked for is older than retention keeps; `oldest` is the oldest still held."""

    def __init__(self, what: str, asked: int, oldest: int) -> None:
        self.asked = asked
        self.oldest = oldest
        super().__init__(f"{what} {asked} is no longer retained (oldest kept: {oldest})")


class LeaseLostError(BlackboardError):
    """A fenced write was refused: the claim or lease it relied on is gone. Nothing written."""

    def __init__(self, fence: str, reason: str) -> None:
        self.fence = fence
        self.reason = reason
        super().__init__(f"lease lost on {fence!r}: {reason}")


class StaleLeaseError(LeaseLostError):
    """A batch fenced by the lease at `key` was refused: the lease is held by token `found`
    ('' when nobody holds it), not by the token the writer held. Nothing was written; the
    writer has lost the lease and must stop acting as its holder."""

    def __init__(self, key: str, found: str) -> None:
        self.key = key
        self.found = found
        super().__init__(key, f"held by {found!r}" if found else "held by nobody")


class BoardUnavailableError(BlackboardError, ConnectionError):
    """Redis could not be reached or failed; retry later or check the URL."""


class LibraryMissingError(BoardUnavailableError):
    """The server has no copy of the board's Redis Functions library at this client's version
    (never deployed, or older than the client). An admin runs `blackboard deploy` once per
    server (every primary of a cluster); role users may not load code themselves."""

    def __init__(self, version: str, detail: str = "") -> None:
        self.version = version
        msg = (
            f"the server has no blackboard functions library {version} (missing, or older than "
            "this client): an admin must run `blackboard deploy --url <admin url>`"
        )
        super().__init__(msg + (f" ({detail})" if detail else ""))


class ServerNotFoundError(BlackboardError):
    """No Redis URL was given and no server binary exists to start a private one."""


class TelemetryUnavailableError(BlackboardError):
    """Traces or metrics were asked for (`telemetry.enable`, ``--metrics-port``) and the
    OpenTelemetry packages are missing: ``pip install 'blackboard[otel]'``."""


class PermissionDeniedError(BlackboardError, PermissionError):
    """The Redis user may not run this command or touch this key (ACL NOPERM)."""


class PolicyError(BlackboardError, ValueError):
    """A policy document is invalid; fix it at `line` (None when unknown). The running
    policy stays in force."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"invalid policy {where}: {reason}")


class DeadlineExceededError(BlackboardError, TimeoutError):
    """A handler did not finish within its activation's deadline; nothing it staged was
    written, and the activation is reported as failed."""

    def __init__(self, activation: str, deadline: float) -> None:
        self.activation = activation
        self.deadline = deadline
        super().__init__(f"activation {activation} ran past its deadline of {deadline:g}s")


class Retry(BlackboardError):
    """Raised by a handler: the failure is transient (a 429 or 503, a timeout); run the
    activation again later. `after` (seconds), when given, is the least delay before the next
    attempt (e.g. a Retry-After header); the role's retry policy bounds the attempts."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        self.reason = reason
        self.after = after
        super().__init__(reason)


class Fail(BlackboardError):
    """Raised by a handler: the failure is permanent (bad input, a refusal); the activation
    is parked as a dead letter at once, with `reason`, and never retried by itself."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AgentLoadError(BlackboardError):
    """An agent given as ``path.py:Class`` (or ``module:Class``) cannot be loaded; fix the
    path, the class name, or the class (it must subclass blackboard.Agent with a role)."""


class MergePolicyError(BlackboardError, ValueError):
    """The ``[[merge]]`` tables of a policy are invalid; fix the table named. A running
    compactor keeps the merge rules it had. Also raised for a custom merge function that is
    not on the compactor's allow-list, or that cannot be loaded: its entries escalate."""


class EscalationNotFoundError(BlackboardError, LookupError):
    """A human resolution named key `key`, for which no merge escalation is open (never
    escalated, or resolved already); nothing was written."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no merge escalation for {key!r}")


class BoardNotEmptyError(BlackboardError):
    """An import was refused because board `board` already holds data (`found`); import
    into a new board name, or delete the board's keys first."""

    def __init__(self, board: str, found: str) -> None:
        self.board = board
        self.found = found
        super().__init__(f"board {board!r} is not empty ({found}); import only into a new board")


class SnapshotError(BlackboardError, ValueError):
    """A snapshot document cannot be read or does not fit the format; nothing was imported."""


class ActivationClosedError(BlackboardError):
    """A handler staged a write after its activation ended (its deadline passed, or its
    result was committed); the write is refused."""


class SecretFileError(BlackboardError):
    """A secrets directory or password file cannot be trusted (not a regular file, another
    owner, readable or writable by group or others, too short a password) or used; nothing
    was read from it. Fix or delete the file named in `path`, as `reason` says."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DurabilityError(BoardUnavailableError):
    """The primary applied the write, but only `acked` of the `wanted` replicas confirmed it
    (`level` 'replicated': WAIT; 'fsynced': WAITAOF, where `local_fsynced` says whether the
    primary's own AOF has it) within the timeout. The write may or may not survive a
    failover. Retrying it with the same idempotency key is safe: it applies at most once and
    waits for the replicas again. `entries` are the entries the write reported."""

    def __init__(
        self,
        level: str,
        acked: int,
        wanted: int,
        timeout_ms: int,
        *,
        local_fsynced: bool | None = None,
        entries: list[Any] | None = None,
    ) -> None:
        self.level = level
        self.acked = acked
        self.wanted = wanted
        self.timeout_ms = timeout_ms
        self.local_fsynced = local_fsynced
        self.entries = entries or []
        what = "replicas acknowledged" if level == "replicated" else "replicas fsynced"
        local = " and the primary did not fsync it" if local_fsynced is False else ""
        super().__init__(
            f"{level} write not confirmed: {acked} of {wanted} {what} it within "
            f"{timeout_ms} ms{local}; it was applied on the primary and may or may not survive "
            "a failover; retrying with the same idempotency key is safe (it applies once)"
        )


class DurabilityUnsupportedError(BlackboardError):
    """The server cannot give the durability level asked for: 'fsynced' needs WAITAOF
    (Redis >= 7.2 or Valkey) and, with the primary's own fsync, appendonly yes. Nothing was
    written; choose another level (BLACKBOARD_DURABILITY) or another server."""
