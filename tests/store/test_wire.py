"""store/wire.py: the commit call laid out from typed values, read back by name, and the
commit function's replies parsed (a malformed one is a clear error, never an IndexError)."""

from __future__ import annotations

from typing import Any

import pytest

from blackboard.errors import BoardUnavailableError
from blackboard.store import wire
from blackboard.store.wire import CommitOp, Fence


def _call(
    ops: list[CommitOp], *, fence: Fence | None = None, fingerprinted: bool = True, **kw: Any
) -> wire.CommitCall:
    args: dict[str, Any] = dict(
        rev="bb:b:rev",
        log="bb:b:log",
        index="bb:b:index",
        idempotency_record="bb:b:idem:k1",
        idempotency_key="k1",
        ttl=600,
        history_keep=8,
        log_cap=1000,
        fence=fence,
        writer="w1",
        activation="act-1",
        ops=ops,
        entry_keys=[f"bb:b:e:{op.key}" for op in ops],
        max_value_bytes=4096,
        fingerprinted=fingerprinted,
    )
    args.update(kw)
    return wire.commit_call(**args)


PUT = CommitOp("p", "3", "a", b"meta-w1", b"\x01")
DEL = CommitOp("d", "*", "b", b"meta-w1")
ADD = CommitOp("a", "*", "c", b"meta-w1", b"\x05", "add")


def test_layout_matches_commit_lua_header() -> None:
    fence = Fence("claim", "bb:b:q:role", "1-1", "agent", "group")
    call = _call([PUT, DEL], fence=fence, trace="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert call.keys[:5] == ["bb:b:rev", "bb:b:log", "bb:b:index", "bb:b:idem:k1", "bb:b:q:role"]
    assert call.keys[5:] == ["bb:b:e:a", "bb:b:e:b"]
    assert call.args[1:11] == [600, 8, 1000, "claim", "1-1", "agent", "group", "w1", "act-1", 2]
    assert call.args[11:17] == ["p", "3", "a", b"meta-w1", b"\x01", ""]
    assert call.args[17:23] == ["d", "*", "b", b"meta-w1", b"", ""]
    assert call.args[23] == 4096 and call.args[24].startswith("00-")


def test_named_accessors_round_trip() -> None:
    call = _call([PUT, DEL, ADD])
    assert call.keys[5:] == ["bb:b:e:a", "bb:b:e:b", "bb:b:e:c"]
    assert call.op_count == 3
    assert [call.op(i) for i in range(3)] == [PUT, DEL, ADD]
    assert call.idempotency_key == "k1" and call.idempotency_record == "bb:b:idem:k1"
    assert call.ttl == 600 and len(call.fingerprint) == 24
    with pytest.raises(IndexError, match="operation 3 of a commit of 3"):
        call.op(3)


def test_with_ttl_changes_only_the_ttl() -> None:
    call = _call([PUT])
    short = call.with_ttl(30)
    assert short.ttl == 30 and call.ttl == 600  # the original is unchanged
    assert short.args[2:] == call.args[2:] and short.keys == call.keys
    assert short.fingerprint == call.fingerprint


def test_unfenced_block_is_empty_and_the_fence_key_is_the_revision_counter() -> None:
    call = _call([PUT])
    assert call.keys[4] == "bb:b:rev"
    assert call.args[4:8] == ["", "", "", ""]
    assert wire.fence_args(None, claims=False) == ["", ""]


def test_merge_fence_block_is_mode_and_token_and_leaves_the_mode_to_the_server() -> None:
    # merge.lua refuses any mode but 'eq' (tests/compaction/test_lease_fence.py); the wire
    # passes the mode on so that the check the server makes cannot be skipped by a caller
    assert wire.fence_args(Fence("eq", "lease", "7"), claims=False) == ["eq", "7"]
    assert wire.fence_args(Fence("claim", "q", "1-1", "c", "g"), claims=False) == ["claim", "1-1"]


def test_fingerprint_ignores_who_sends_and_the_trace_but_not_what() -> None:
    base = _call([PUT]).fingerprint
    other_writer = _call(
        [CommitOp("p", "3", "a", b"meta-w2", b"\x01")], writer="w2", trace="00-x"
    ).fingerprint
    assert other_writer == base
    assert _call([CommitOp("p", "3", "a", b"meta-w1", b"\x02")]).fingerprint != base
    assert _call([CommitOp("p", "4", "a", b"meta-w1", b"\x01")]).fingerprint != base
    assert _call([PUT], activation="act-2").fingerprint != base
    assert _call([PUT], fingerprinted=False).fingerprint == ""


def test_bad_calls_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one operation"):
        _call([])
    with pytest.raises(ValueError, match="1 operations but 2 entry keys"):
        _call([PUT], entry_keys=["x", "y"])


def test_replies_parse_into_typed_values() -> None:
    ok = wire.parse_commit_reply([b"ok", 7, 1700, [3, 1], [b"", b"\x06"]], 2)
    assert ok == wire.Applied(7, 1700, [3, 1], [b"", b"\x06"])
    assert wire.parse_commit_reply([b"dup", b"7|1700|3,1"], 2) == wire.Duplicate(7, 1700, [3, 1])
    assert wire.parse_commit_reply([b"conflict", 2, 5, None, 0], 2) == wire.Conflict(1, 5, b"")
    assert wire.parse_commit_reply([b"fenced", b"claim lost"], 1) == wire.Fenced("claim lost")
    assert wire.parse_commit_reply([b"reused"], 1) == wire.Reused()
    assert wire.parse_commit_reply([b"denied", 0, b"no"], 1) == wire.Refused("denied", None, "no")
    assert wire.parse_commit_reply([b"badop", 1, b"bad"], 1) == wire.Refused("badop", 0, "bad")


@pytest.mark.parametrize(
    "reply",
    [
        [b"ok", 7, 1700, [3], [b""]],  # one version for two operations
        [b"ok", 7],  # truncated
        [b"dup", b"7|1700"],  # no versions
        [b"conflict", 3, 5, None],  # an operation the commit does not have
        [b"badop", b"x", b"why"],
        None,
    ],
)
def test_a_malformed_reply_is_a_clear_error(reply: Any) -> None:
    with pytest.raises(BoardUnavailableError, match="malformed answer from the commit function"):
        wire.parse_commit_reply(reply, 2)


def test_an_unknown_status_is_named() -> None:
    with pytest.raises(BoardUnavailableError, match=r"unexpected answer.*surprise"):
        wire.parse_commit_reply([b"surprise"], 1)
