"""Least privilege: Redis ACL users per agent role, controller and compactor (no I/O here
except `apply_users`; imports keys, policy).

Each process kind gets its own user, limited to one board's keys (``bb:{B}:*``):

- ``bb.<B>.agent.<role>``: reads the whole board; writes only the entries its role owns
  (the policy's ``[roles.<role>].writes`` globs), plus the shared keys a commit touches
  (revision, log, live-key index, idempotency records), its own role queue, agent presence,
  the outcome stream and proposals. A write outside its scope fails in the server with
  NOPERM, which the client raises as `PermissionDeniedError`.
- ``bb.<B>.controller``: reads the board; writes queues, activation records, controller
  state, decisions, lease and epoch, and reads the log through its consumer group.
- ``bb.<B>.compactor``: reads and writes every key of the board (merges, trims, snapshots).

Commands: data, stream and scripting commands only; ``@dangerous`` (FLUSHALL, KEYS, CONFIG,
DEBUG, ...) and ``@admin`` are denied. Scripts cannot escape: Redis checks every command a
script runs against the caller's ACL. Passwords are stored as SHA-256 (``#<hex>``) in the
rules; the clear text goes only to files the operator hands to each process
(``BLACKBOARD_REDIS_PASSWORD_FILE``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from blackboard.keys import BoardKeys
from blackboard.policy import Policy

__all__ = ["AclUser", "acl_users", "apply_users", "render_aclfile", "write_secrets"]

COMMANDS = (
    "-@all +@read +@write +@stream +@scripting +@connection +@transaction +@fast "
    "+time +command +cluster|slots +cluster|shards +cluster|nodes +cluster|myid "
    "+client|setname +client|id "
    "-@dangerous -@admin -script|flush -script|kill -function|flush -function|delete "
    "-function|restore -function|load -flushall -flushdb -keys -swapdb -migrate"
)


@dataclass(frozen=True)
class AclUser:
    """One Redis user: its name, what it is for, and its key permissions (ACL syntax)."""

    name: str
    purpose: str
    keys: tuple[str, ...]

    def rules(self, password_hash: str | None = None) -> str:
        secret = f"#{password_hash}" if password_hash else "nopass"
        return " ".join(["on", "resetkeys", "resetchannels", secret, COMMANDS, *self.keys])


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


def acl_users(policy: Policy, board: str) -> list[AclUser]:
    """The users for `board` under `policy` (pure)."""
    k = BoardKeys(board)
    read_all = f"%R~{k.prefix}*"
    shared_write = (
        f"~{k.rev}",
        f"~{k.log}",
        f"~{k.index}",
        f"~{k.idem_prefix}*",
        f"~{k.outcomes}",
        f"~{k.agents}",
        f"~{k.proposals('*')}",
        f"~{k.proposed}",
        f"~{k.divergent}",
    )
    users = []
    for role in roles_of(policy):
        writes = policy.limits(role).writes
        owned = tuple(f"~{k.entry(p)}" for p in (writes if writes is not None else ["*"]))
        users.append(
            AclUser(
                f"bb.{board}.agent.{role}",
                f"agents of role {role}: write "
                + (", ".join(writes) if writes is not None else "any entry (no `writes` given)"),
                (read_all, *shared_write, f"~{k.queue(role)}", *owned),
            )
        )
    users.append(
        AclUser(
            f"bb.{board}.controller",
            "the controller: grants activations, keeps its lease and state",
            (
                read_all,
                f"~{k.log}",
                f"~{k.outcomes}",
                f"~{k.queue('*')}",
                f"~{k.activation('*')}",
                f"~{k.open_activations}",
                f"~{k.decisions('*')}",
                f"~{k.controller_lease}",
                f"~{k.controller_epoch}",
                f"~{k.controller_state}",
                f"~{k.agents}",
            ),
        )
    )
    users.append(
        AclUser(f"bb.{board}.compactor", "the compactor: merges and trims", (f"~{k.prefix}*",))
    )
    return users


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def write_secrets(users: list[AclUser], directory: Path) -> dict[str, str]:
    """Make a random password per user, write each to `<directory>/<user>.password` (0600);
    return user -> SHA-256 of its password. Existing files are kept (stable passwords)."""
    directory.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for user in users:
        path = directory / f"{user.name}.password"
        if path.exists():
            password = path.read_text().splitlines()[0].strip()
        else:
            password = secrets.token_urlsafe(24)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
        path.chmod(0o600)
        hashes[user.name] = password_hash(password)
    return hashes


def render_aclfile(users: list[AclUser], hashes: dict[str, str] | None = None) -> str:
    """ACL file text (for `aclfile` in redis.conf, or ACL LOAD). ACL files allow no comments;
    each user's purpose is in `AclUser.purpose`."""
    lines = []
    for user in users:
        lines.append(f"user {user.name} {user.rules((hashes or {}).get(user.name))}")
    return "\n".join(lines) + "\n"


async def apply_users(redis: object, users: list[AclUser], hashes: dict[str, str]) -> None:
    """ACL SETUSER each user on a running server, as an admin connection (`redis`)."""
    for user in users:
        args = user.rules(hashes.get(user.name)).split()
        await redis.execute_command(  # type: ignore[attr-defined]
            "ACL", "SETUSER", user.name, "reset", *args
        )
