"""Every Redis key name blackboard uses is built here and nowhere else (store layer).

Board `B` keeps all of its keys under the prefix ``bb:{B}:`` so that they share one hash
tag: one board lives on one Redis Cluster slot, and every multi-key script stays legal.

=====================  ==========  ====================================================
``bb:{B}:e:<key>``      hash        entry: ``v`` version, ``r`` revision, ``lo`` oldest
                                    retained version, ``x`` 1 when deleted, and one field
                                    per retained version ``<n>`` holding its record
``bb:{B}:rev``          string      board revision counter (one step per commit)
``bb:{B}:log``          stream      change log; event id ``<revision>-1``
``bb:{B}:index``        zset        live entry keys (score 0, lexicographic order)
``bb:{B}:idem:<s>:<id>`` string     idempotency record of scope ``<s>`` (a role, or
                                    ``@`` / ``@controller`` / ``@compactor``), with a TTL
``bb:{B}:config``       hash        board settings the server enforces (written by the
                                    deployer): ``max_value_bytes``
``bb:{B}:q:<role>``     stream      activation queue of a role; consumer group ``agents``
                                    (pending list = claims), one consumer per agent
``bb:{B}:act:<id>``     hash        activation record: role, key, version, rule, why,
                                    state and outcome (controller.py)
``bb:{B}:open``         hash        activations granted and not finished:
                                    id -> msgpack [role, resource, depth, priority, ms]
``bb:{B}:outcomes``     stream      outcomes agents report without a commit (failed,
                                    done without writes); controller group ``controller``
``bb:{B}:retry``        zset        activations waiting to run again: id -> due time, ms
``bb:{B}:failed``       zset        dead letters (failed after their last attempt):
                                    id -> time failed, ms
``bb:{B}:ctl:cmd``      stream      operators' commands to the controller (retry, cancel;
                                    pause, drain, resume a role; open, reset a breaker),
                                    written by admins and humans only
``bb:{B}:why:<key>``    list        latest controller decisions about entry ``<key>``,
                                    newest first (``blackboard explain``)
``bb:{B}:ctl:lease``    string      controller leader lease ``<epoch>:<holder>`` with TTL
``bb:{B}:ctl:epoch``    string      controller fencing epoch counter (one step per leader)
``bb:{B}:ctl:state``    hash        controller state: breakers and operators' steering per
                                    role, command cursor, status snapshot
``bb:{B}:agents``       hash        agent presence: agent id -> msgpack heartbeat record
``bb:{B}:p:<key>``      hash        proposals for entry ``<key>``: one field per proposer
                                    holding its latest proposal record (proposals.py)
``bb:{B}:proposed``     zset        entry keys with open proposals; score = revision of
                                    the latest proposal
``bb:{B}:divergent``    zset        entry keys whose open proposals disagree; same score
``bb:{B}:compactor``    string      compactor lease: the holder's fencing token
``bb:{B}:compactor:n``  string      compactor lease epoch counter (one step per holder)
=====================  ==========  ====================================================

Entry keys sit behind their own ``e:`` prefix so that a Redis ACL user can be limited to the
entries of one role with a pattern such as ``~bb:{B}:e:ticket/*``.

Entry keys: 1 to 512 characters from ``A-Z a-z 0-9 _ - . / : @ = + ,``; they may not start
with ``/`` nor contain ``//``. Glob characters (``* ? [ ]``) are allowed only in patterns.
Board names: 1 to 64 characters from ``A-Z a-z 0-9 _ - .``.
"""

from __future__ import annotations

import re

from blackboard.errors import InvalidKeyError

MAX_KEY_LENGTH = 512
MAX_BOARD_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 200

# the board entry (not a Redis key) holding the policy in force: written by the CLI, read by
# the controller and the compactor, which sit on independent layers above this one
POLICY_KEY = "sys/policy"

_KEY_RE = re.compile(r"[A-Za-z0-9_\-./:@=+,]+")
_PATTERN_RE = re.compile(r"[A-Za-z0-9_\-./:@=+,*?\[\]]+")
_BOARD_RE = re.compile(r"[A-Za-z0-9_\-.]+")
_SCOPE_RE = re.compile(r"@[a-z]*|[A-Za-z0-9_\-.]{1,64}")


def check_board(board: str) -> str:
    """Return `board` if it is a valid board name; raises InvalidKeyError."""
    if not isinstance(board, str) or not board:
        raise InvalidKeyError(str(board), "board name must be a non-empty string")
    if len(board) > MAX_BOARD_LENGTH:
        raise InvalidKeyError(board, f"board name longer than {MAX_BOARD_LENGTH} characters")
    if not _BOARD_RE.fullmatch(board):
        raise InvalidKeyError(board, "board name may use only A-Z a-z 0-9 _ - .")
    return board


def check_key(key: str) -> str:
    """Return `key` if it is a valid entry key; raises InvalidKeyError."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(str(key), "key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(key[:40] + "...", f"longer than {MAX_KEY_LENGTH} characters")
    if not _KEY_RE.fullmatch(key):
        bad = sorted({c for c in key if not _KEY_RE.fullmatch(c)})
        raise InvalidKeyError(key, f"characters not allowed: {''.join(bad)!r}")
    if key.startswith("/") or "//" in key:
        raise InvalidKeyError(key, "may not start with '/' or contain '//'")
    return key


def check_pattern(pattern: str) -> str:
    """Return `pattern` if it is a valid glob over entry keys; raises InvalidKeyError."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidKeyError(str(pattern), "pattern must be a non-empty string")
    if len(pattern) > MAX_KEY_LENGTH or not _PATTERN_RE.fullmatch(pattern):
        raise InvalidKeyError(pattern, "pattern may use key characters and * ? [ ] only")
    return pattern


def check_idempotency_key(idempotency_key: str) -> str:
    """Return `idempotency_key` if usable; raises InvalidKeyError."""
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise InvalidKeyError(str(idempotency_key), "idempotency key must be a non-empty string")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidKeyError(
            idempotency_key[:40] + "...",
            f"idempotency key longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )
    return idempotency_key


def scope_of_user(username: str | None) -> str:
    """The idempotency scope of a Redis user named by `acl.user_name`: the role of an agent
    user, ``@controller`` / ``@compactor``, else ``@`` (admin and unscoped clients)."""
    parts = (username or "").split(":")
    if len(parts) == 4 and parts[0] == "bb" and parts[2] == "role":
        return parts[3]
    if len(parts) == 3 and parts[0] == "bb" and parts[2] in ("controller", "compactor"):
        return "@" + parts[2]
    return "@"


class BoardKeys:
    """Key names of one board; create one per board and reuse it (the prefix is cached).

    `scope` names the idempotency namespace this client writes in: each role's ACL user may
    write only its own, so no role can plant or read-modify another's records."""

    __slots__ = ("board", "config", "idem_prefix", "index", "log", "prefix", "rev", "scope")

    def __init__(self, board: str, scope: str = "@") -> None:
        self.board = check_board(board)
        if not _SCOPE_RE.fullmatch(scope):
            raise InvalidKeyError(scope, "idempotency scope must be a role name or @<word>")
        self.scope = scope
        self.prefix = f"bb:{{{board}}}:"
        self.rev = self.prefix + "rev"
        self.log = self.prefix + "log"
        self.index = self.prefix + "index"
        self.config = self.prefix + "config"
        self.idem_prefix = self.prefix + "idem:" + scope + ":"

    def entry(self, key: str) -> str:
        """The hash holding entry `key` and its retained versions."""
        return self.prefix + "e:" + key

    def entry_pattern(self, pattern: str) -> str:
        """A Redis glob matching the entry hashes whose keys match `pattern`."""
        return self.prefix + "e:" + pattern

    def key_of_entry(self, redis_key: str) -> str:
        """Inverse of entry(): the entry key inside a Redis key name."""
        return redis_key[len(self.prefix) + 2 :]

    def idempotency(self, idempotency_key: str) -> str:
        """The string holding the result of the commit that used `idempotency_key` (in this
        client's scope)."""
        return self.idem_prefix + idempotency_key

    def idempotency_scope(self, scope: str) -> str:
        """The ACL pattern of every idempotency record of `scope`."""
        return self.prefix + "idem:" + scope + ":*"

    def queue(self, role: str) -> str:
        """The activation queue (stream) of `role`."""
        return self.prefix + "q:" + role

    def activation(self, activation_id: str) -> str:
        """The record (hash) of one activation."""
        return self.prefix + "act:" + activation_id

    @property
    def open_activations(self) -> str:
        """The hash of activations granted and not finished, by activation id."""
        return self.prefix + "open"

    @property
    def outcomes(self) -> str:
        """The stream of outcomes agents report without a commit."""
        return self.prefix + "outcomes"

    def decisions(self, key: str) -> str:
        """The list of the controller's latest decisions about entry `key`."""
        return self.prefix + "why:" + key

    @property
    def controller_lease(self) -> str:
        """The controller leader lease: ``<epoch>:<holder>``, with a TTL."""
        return self.prefix + "ctl:lease"

    @property
    def controller_epoch(self) -> str:
        """The counter that numbers controller leaders (part of each fencing token)."""
        return self.prefix + "ctl:epoch"

    @property
    def controller_state(self) -> str:
        """The hash of controller state that outlives a leader (breakers, status)."""
        return self.prefix + "ctl:state"

    @property
    def retry_schedule(self) -> str:
        """The zset of activations waiting to run again, scored by due time (ms)."""
        return self.prefix + "retry"

    @property
    def dead_letters(self) -> str:
        """The zset of activations that failed after their last attempt (ms failed)."""
        return self.prefix + "failed"

    @property
    def controller_commands(self) -> str:
        """The stream of operators' commands to the controller (retry, cancel)."""
        return self.prefix + "ctl:cmd"

    @property
    def agents(self) -> str:
        """The hash of agent heartbeats, by agent id."""
        return self.prefix + "agents"

    def proposals(self, key: str) -> str:
        """The hash of open proposals for entry `key`, one field per proposer."""
        return self.prefix + "p:" + key

    @property
    def proposed(self) -> str:
        """The zset of entry keys with open proposals."""
        return self.prefix + "proposed"

    @property
    def divergent(self) -> str:
        """The zset of entry keys whose open proposals disagree."""
        return self.prefix + "divergent"

    @property
    def compactor_lease(self) -> str:
        """The string holding the fencing token of the compactor that holds the lease."""
        return self.prefix + "compactor"

    @property
    def compactor_epoch(self) -> str:
        """The counter that numbers compactor leases (part of each fencing token)."""
        return self.prefix + "compactor:n"
