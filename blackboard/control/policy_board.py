"""The policy in force is an entry on the board: ``sys/policy`` (control layer; imports
board, policy, entry, errors).

Its value holds the TOML source, the file name and a digest; every apply is a new version
(compare-and-set on the version read), so the history of the entry is the history of the
policy and a rollback is one more version holding an older source. A document is validated
before it is written: an invalid one never reaches the board.
"""

from __future__ import annotations

from typing import Any

from blackboard.board.client import Board
from blackboard.control.policy import Policy, parse_policy, policy_digest
from blackboard.errors import BlackboardError, ConflictError, PolicyError
from blackboard.store.entry import ABSENT, Entry
from blackboard.store.keys import POLICY_KEY

__all__ = ["POLICY_KEY", "apply_policy", "load_policy", "policy_of", "rollback_policy"]


def policy_of(value: Any, name: str = POLICY_KEY) -> Policy:
    """The Policy held by a ``sys/policy`` value; raises PolicyError."""
    if not isinstance(value, dict) or not isinstance(value.get("source"), str):
        raise PolicyError(name, None, "the entry holds no policy source")
    return parse_policy(value["source"], str(value.get("file") or name))


async def load_policy(board: Board) -> tuple[Policy, Entry] | None:
    """The policy in force and its entry, or None when none was applied.
    Raises PolicyError when the entry holds an invalid document."""
    entry = await board.get(POLICY_KEY)
    if entry is None:
        return None
    return policy_of(entry.value), entry


async def last_valid_policy(board: Board) -> tuple[Policy, Entry] | None:
    """The newest retained version of the policy entry that holds a valid policy (what a
    controller runs when the newest one is invalid: written around `policy apply`)."""
    for entry in await board.history(POLICY_KEY):
        if entry.deleted:
            return None
        try:
            return policy_of(entry.value), entry
        except BlackboardError:
            continue
    return None


async def apply_policy(board: Board, source: str, file: str) -> tuple[Entry, bool]:
    """Validate `source` and make it the policy in force. Returns the entry and whether a
    new version was written (False when the same document is in force already).
    Raises PolicyError (nothing written) or ConflictError (a concurrent apply won)."""
    parse_policy(source, file)
    digest = policy_digest(source)
    current = await board.get(POLICY_KEY)
    if (
        current is not None
        and isinstance(current.value, dict)
        and current.value.get("digest") == digest
    ):
        return current, False
    value = {"source": source, "file": file, "digest": digest}
    expect = current.version if current is not None else ABSENT
    return await board.put(POLICY_KEY, value, expect=expect), True


async def rollback_policy(board: Board, expect: int | None = None) -> Entry:
    """Put the previous valid policy back in force as a new version; with `expect`, only
    if the policy in force is that version (what a screen showed).
    Raises PolicyError when there is no earlier valid policy, ConflictError when the policy
    moved on."""
    history = await board.history(POLICY_KEY)
    if not history or history[0].deleted:
        raise PolicyError(POLICY_KEY, None, "no policy is in force")
    current = history[0]
    if expect is not None and current.version != expect:
        raise ConflictError(POLICY_KEY, expect, current.version, current)
    digest = current.value.get("digest") if isinstance(current.value, dict) else None
    for older in history[1:]:
        if older.deleted or not isinstance(older.value, dict):
            continue
        if older.value.get("digest") == digest:
            continue
        try:
            policy_of(older.value)
        except BlackboardError:
            continue
        return await board.put(POLICY_KEY, older.value, expect=current.version)
    raise PolicyError(POLICY_KEY, None, "no earlier valid policy in the retained history")
