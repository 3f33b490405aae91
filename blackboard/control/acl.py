"""Least privilege: Redis ACL users per agent role, controller and compactor (no I/O here
except `apply_users` and `write_secrets`; imports keys, policy, secret_files).

Agents run untrusted model output with their role's credentials, so what a role may do is
what the server lets its user do (docs/security.md). Each process kind gets its own user,
named unambiguously (board names and role names cannot hold ``:``):

- ``bb:<B>:role:<role>``: reads the board's keys with read-only commands (no SCAN, no
  RANDOMKEY, no SELECT, nothing outside ``bb:{B}:``); runs the board's functions with FCALL
  and FCALL_RO and no EVAL/SCRIPT at all; and, through ACL selectors (Redis 7: command + key),
  may write exactly what those functions write for it: HSET/HDEL on the entries its role owns
  (the policy's ``[roles.<role>].writes`` globs), INCRBY on the revision counter, XADD on the
  log and the outcome stream, ZADD/ZREM on the live-key index, SET on its own idempotency
  scope, the claim commands on its own role queue, HSET on proposals and presence (and, for
  the human role, XADD on the operators' command stream: retry, cancel, role and breaker
  commands). No SET,
  DEL, XTRIM or EXPIRE on shared keys. Redis checks ACL inside functions too, so a write
  outside this is refused with NOPERM (`PermissionDeniedError`); the commit asks first
  (``redis.acl_check_cmd``) so it refuses before its first write.
- ``bb:<B>:controller`` and ``bb:<B>:compactor``: trusted processes; data, stream and
  function commands on every key of the board, no EVAL, ``@dangerous`` or ``@admin``.

Passwords are stored as SHA-256 (``#<hex>``) in the rules; the clear text goes only to files
the operator hands to each process (``BLACKBOARD_REDIS_PASSWORD_FILE``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from blackboard.control.policy import Policy, roles_of
from blackboard.store.keys import BoardKeys
from blackboard.store.secret_files import private_directory, read_password_file, write_password_file

__all__ = ["AclUser", "acl_users", "apply_users", "render_aclfile", "user_name", "write_secrets"]

# what every user needs to connect and find its server
_CONNECTION = (
    "+ping +hello +auth +client|setname +client|id +client|info +time "
    "+readonly +cluster|slots +cluster|shards +cluster|nodes +cluster|myid +cluster|info"
)
# the read-only commands a role runs on its board (with %R~ key patterns)
_READS = (
    "+fcall_ro +get +mget +hget +hmget +hgetall +hkeys +hlen +hexists +exists +type +pttl "
    "+xrange +xrevrange +xread +xlen +xpending +xinfo|groups +xinfo|stream "
    "+zrange +zrangebylex +zrangebyscore +zscore +zmscore +zlexcount +zcard +zscan "
    "+lrange +llen"
)
_TRUSTED = (
    "-@all +@read +@write +@stream +@connection +@transaction +@fast +fcall +fcall_ro "
    f"{_CONNECTION} -@dangerous -@admin -flushall -flushdb -keys -swapdb -migrate -select "
    "-eval -eval_ro -evalsha -evalsha_ro -script"
)
# +@connection for WAIT and WAITAOF (durability.py; named as a category because an ACL rule
# naming WAITAOF is refused by Redis 7.0, which has no such command), less its dangerous part
# (CLIENT KILL/LIST/PAUSE...) and SELECT
COMMANDS = f"-@all +@connection -@dangerous -select {_CONNECTION} {_READS}"


@dataclass(frozen=True)
class AclUser:
    """One Redis user: its name, what it is for, its root commands and key permissions, and
    its selectors (each a parenthesised ``(+cmd ... ~pattern ...)`` ACL rule)."""

    name: str
    purpose: str
    keys: tuple[str, ...]
    commands: str = COMMANDS
    selectors: tuple[str, ...] = ()

    def args(self, password_hash: str | None = None) -> list[str]:
        """The rules as ACL SETUSER arguments (each selector one argument)."""
        secret = f"#{password_hash}" if password_hash else "nopass"
        return [
            "on", "resetkeys", "resetchannels", "clearselectors", secret,
            *self.commands.split(), *self.keys, *self.selectors,
        ]  # fmt: skip

    def rules(self, password_hash: str | None = None) -> str:
        """The rules as one line of ACL file text."""
        return " ".join(self.args(password_hash))


def user_name(board: str, role: str | None = None, *, kind: str = "role") -> str:
    """The Redis user of `role` on `board` (or of its controller / compactor: `kind`)."""
    return f"bb:{board}:role:{role}" if kind == "role" else f"bb:{board}:{kind}"


def role_user(k: BoardKeys, role: str, writes: list[str] | None, human: bool = False) -> AclUser:
    """The user of one role (pure): see the module docstring."""
    owned = " ".join(f"~{k.entry(p)}" for p in (writes if writes is not None else ["*"]))
    selectors: tuple[str, ...] = (
        f"(+fcall ~{k.prefix}*)",  # functions may name any board key; inner commands decide
        f"(+hset +hdel {owned})",
        f"(+incrby ~{k.rev})",
        f"(+xadd ~{k.log} ~{k.outcomes})",
        f"(+zadd +zrem ~{k.index} ~{k.proposed} ~{k.divergent})",
        f"(+set ~{k.idempotency_scope(role)})",
        f"(+xreadgroup +xack +xautoclaim +xclaim +xgroup|create ~{k.queue(role)})",
        f"(+hset +hdel ~{k.agents} ~{k.proposals('*')})",
    )
    if human:  # people steer through the controller: retry, cancel, pause a role...
        selectors += (f"(+xadd ~{k.controller_commands})",)
    return AclUser(
        user_name(k.board, role),
        f"agents of role {role}: write "
        + (", ".join(writes) if writes is not None else "any entry (no `writes` given)"),
        (f"%R~{k.prefix}*",),
        selectors=selectors,
    )


def acl_users(policy: Policy, board: str) -> list[AclUser]:
    """The users for `board` under `policy` (pure)."""
    k = BoardKeys(board)
    human = policy.escalation.human
    users = [
        role_user(k, role, policy.limits(role).writes, role == human) for role in roles_of(policy)
    ]
    users.append(
        AclUser(
            user_name(board, kind="controller"),
            "the controller: grants activations, keeps its lease and state",
            (f"~{k.prefix}*",),
            _TRUSTED,
        )
    )
    users.append(
        AclUser(
            user_name(board, kind="compactor"),
            "the compactor: merges and trims",
            (f"~{k.prefix}*",),
            _TRUSTED + " +scan",
        )
    )
    return users


def password_hash(password: str) -> str:
    """The SHA-256 hex digest of `password`: what an ACL rule stores (``#<hex>``)."""
    return hashlib.sha256(password.encode()).hexdigest()


def write_secrets(users: list[AclUser], directory: Path) -> dict[str, str]:
    """Make a random password per user, write each to `<directory>/<user>.password` (0600,
    in a directory created or tightened to 0700); return user -> SHA-256 of its password.
    An existing file is reused (stable passwords) only when it is safe: a regular file of
    this user, private, with a password of at least 16 characters. Raises SecretFileError
    naming the directory or file otherwise; nothing is overwritten."""
    private_directory(directory)
    hashes = {}
    for user in users:
        path = directory / f"{user.name}.password"
        password = secrets.token_urlsafe(24)
        try:
            write_password_file(path, password)
        except FileExistsError:
            password = read_password_file(path)
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
        await redis.execute_command(  # type: ignore[attr-defined]
            "ACL", "SETUSER", user.name, "reset", *user.args(hashes.get(user.name))
        )
