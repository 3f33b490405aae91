"""Configuration: one pydantic-settings model, read from ``BLACKBOARD_*`` at the edge.

Library code receives a `Settings` instance explicitly; only `connect()` and the CLI call
`Settings()` to read the environment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the board client, with its default and its environment variable."""

    model_config = SettingsConfigDict(env_prefix="BLACKBOARD_", extra="ignore")

    redis_url: str | None = Field(
        None,
        description="redis://, rediss://, unix://, redis+cluster://, redis+sentinel:// URL; "
        "unset = a private embedded server",
    )
    board: str = Field("demo", description="board name (BLACKBOARD_BOARD)")
    redis_username: str | None = Field(None, description="Redis ACL user (overrides the URL's)")
    redis_password: str | None = Field(
        None, repr=False, description="Redis password; prefer redis_password_file"
    )
    redis_password_file: str | None = Field(
        None, description="file whose first line is the Redis password"
    )
    idempotency_scope: str | None = Field(
        None,
        description="idempotency namespace this client writes in (default: the role of the "
        "ACL user, from its name bb:<board>:role:<role>; '@' for other users)",
    )
    tls_ca_file: str | None = Field(None, description="CA bundle for rediss:// servers")
    tls_cert_file: str | None = Field(None, description="client certificate for rediss://")
    tls_key_file: str | None = Field(None, description="client private key for rediss://")
    idempotency_ttl: int = Field(
        86_400, ge=1, description="seconds an explicit idempotency key is remembered"
    )
    auto_idempotency_ttl: int = Field(
        120, ge=1, description="seconds the key generated for a write without one is remembered"
    )
    history_keep: int = Field(64, ge=1, description="versions of history kept per entry")
    log_cap: int = Field(
        1_000_000, ge=0, description="approximate change-log length cap (0 = unbounded)"
    )
    max_value_bytes: int = Field(1 << 20, ge=1, description="largest encoded value accepted")
    max_ops: int = Field(500, ge=1, le=900, description="most operations in one transaction")
    update_attempts: int = Field(64, ge=1, description="attempts update() makes on conflicts")
    backoff_base: float = Field(0.001, gt=0, description="first backoff of update(), seconds")
    backoff_cap: float = Field(0.05, gt=0, description="largest backoff of update(), seconds")
    connect_timeout: float = Field(5.0, gt=0, description="seconds to wait for a connection")
    connect_wait: float = Field(
        0.0,
        ge=0,
        description="seconds connect() keeps retrying an unreachable server (long-running "
        "processes: controller, compactor, agents use at least 30)",
    )
    durability: Literal["local", "replicated", "fsynced"] = Field(
        "local",
        description="when a write is acknowledged: 'local' (the primary applied it), "
        "'replicated' (and durability_replicas replicas have it: WAIT), 'fsynced' (and the "
        "primary and durability_replicas replicas wrote it to their AOF: WAITAOF, Redis >= "
        "7.2 or Valkey); see docs/deployment.md",
    )
    durability_replicas: int = Field(
        1, ge=0, description="replicas that must acknowledge a write above 'local'"
    )
    durability_timeout_ms: int = Field(
        1000,
        ge=1,
        description="milliseconds a write waits for its replicas before DurabilityError",
    )
    sentinel_username: str | None = Field(
        None, description="user for the Sentinels of a redis+sentinel:// URL (default: none)"
    )
    sentinel_password: str | None = Field(
        None, repr=False, description="password of the Sentinels; prefer sentinel_password_file"
    )
    sentinel_password_file: str | None = Field(
        None, description="file whose first line is the Sentinels' password"
    )
    socket_timeout: float | None = Field(
        None,
        gt=0,
        description="seconds to wait for a reply (unset: no timeout; a dead peer is found by "
        "TCP keepalive). redis-py's per-command timeout costs ~40 us of CPU per command",
    )

    # controller and agent runtime (controller.py, runtime.py)
    claim_lease: float = Field(
        30.0, gt=0, description="seconds a claim lives unrenewed before another agent takes it"
    )
    agent_heartbeat: float = Field(1.0, gt=0, description="seconds between agent heartbeats")
    shutdown_grace: float = Field(
        10.0, ge=0, description="seconds a stopping agent lets in-flight activations finish"
    )
    max_deliveries: int = Field(
        5, ge=1, description="deliveries of one activation before it is failed as poison"
    )
    conflict_retries: int = Field(
        3, ge=0, description="times a handler runs again when its commit meets a conflict"
    )
    activation_idempotency_ttl: int = Field(
        3600, ge=1, description="seconds an activation's commit is remembered for retries"
    )
    controller_lease: float = Field(
        5.0, gt=0, description="seconds the controller leader lease lasts unrenewed"
    )
    controller_batch: int = Field(
        512, ge=1, description="log events the controller reads and settles per batch"
    )
    decisions_kept: int = Field(50, ge=1, description="controller decisions kept per entry")
    decisions_ttl: int = Field(
        7 * 86_400, ge=1, description="seconds an entry's decision list outlives its last write"
    )
    outcomes_cap: int = Field(
        100_000, ge=1, description="approximate length cap of the agents' outcome stream"
    )
    activation_ttl: int = Field(
        86_400, ge=0, description="seconds a finished activation's record is kept (0 = always)"
    )

    # compactor (compactor.py, merge_functions.py)
    merge_functions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="the compactor's allow-list of custom merge functions a policy may name: "
        "'name=package.module:function,...' (BLACKBOARD_MERGE_FUNCTIONS); installed packages "
        "add theirs as entry points in group 'blackboard.merge_functions'",
    )

    @field_validator("merge_functions", mode="before")
    @classmethod
    def _merge_functions(cls, value: Any) -> Any:
        """``name=module:function`` pairs separated by commas; the allow-list checks them."""
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, target = item.partition("=")
            if not sep or not name.strip() or not target.strip():
                raise ValueError(f"{item!r} is not name=package.module:function")
            pairs[name.strip()] = target.strip()
        return pairs
