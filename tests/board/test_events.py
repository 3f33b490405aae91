"""board/events.py: the one parser of change-log events, against events real commits wrote."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

import blackboard
from blackboard.board.events import EventOp, decode_value, parse_log_event
from blackboard.errors import CorruptEntryError
from blackboard.store import codec


async def _events(board: blackboard.Board) -> list[tuple[bytes, dict[bytes, bytes]]]:
    raw: Any = await board.redis.xrange(board.keys_.log)
    return list(raw)


async def test_a_commit_parses_back_to_its_operations(board: blackboard.Board) -> None:
    await board.put("a", {"x": 1})
    await board.transact([blackboard.Put("b", [1, 2]), blackboard.Delete("a")])
    first, second = [parse_log_event(i, f) for i, f in await _events(board)]
    assert (first.revision, first.writer, first.activation) == (1, board.writer, None)
    assert first.ops == (EventOp("a", 1, "put", codec.encode_value("a", {"x": 1}, 1 << 20)),)
    assert [(o.key, o.version, o.kind) for o in second.ops] == [("b", 1, "put"), ("a", 2, "delete")]
    assert second.id == "2-1" and second.revision == 2
    assert [decode_value(o.key, o.kind, o.data, None) for o in second.ops] == [[1, 2], None]
    change = second.change(second.ops[0], [1, 2])
    assert (change.revision, change.key, change.version, change.value) == (2, "b", 1, [1, 2])


async def test_activation_and_merge_fields(board: blackboard.Board) -> None:
    caused = board.bind(causation=blackboard.Causation("act-9"))
    await caused.put("k", 1)
    [(eid, fields)] = await _events(board)
    event = parse_log_event(eid, fields)
    assert event.activation == "act-9" and event.merged == []
    merged = parse_log_event(b"5-1", {**fields, b"mp": msgpack.packb([["p1", 3], ["p2", 4]])})
    assert merged.merged == [("p1", 3), ("p2", 4)]
    bad = parse_log_event(b"5-1", {**fields, b"mp": b"\xc1"})
    with pytest.raises(CorruptEntryError, match="log event 5-1"):
        _ = bad.merged


@pytest.mark.parametrize(
    ("drop", "patch", "why"),
    [
        (b"w", {}, "b'w'"),
        (b"k1", {}, "b'k1'"),
        (None, {b"n": b"x"}, "invalid literal"),
        (None, {b"o1": b"z"}, "b'z'"),
        (None, {b"v1": b""}, "invalid literal"),
        (None, {b"n": b"-1"}, "-1 operations"),
    ],
)
async def test_a_malformed_event_is_a_corrupt_entry_naming_it(
    board: blackboard.Board, drop: bytes | None, patch: dict[bytes, bytes], why: str
) -> None:
    await board.put("k", 1)
    [(eid, fields)] = await _events(board)
    broken = {k: v for k, v in fields.items() if k != drop} | patch
    with pytest.raises(CorruptEntryError, match=f"log event 1-1.*{why}"):
        parse_log_event(eid, broken)


def test_many_operations_past_the_precomputed_names() -> None:
    fields = {b"w": b"w", b"t": b"1", b"n": b"70"}
    for i in range(1, 71):
        fields |= {b"k%d" % i: b"k%d" % i, b"v%d" % i: b"1", b"o%d" % i: b"p", b"d%d" % i: b""}
    event = parse_log_event("9-1", fields)
    assert len(event.ops) == 70 and event.ops[-1].key == "k70"


def test_proposal_values_skip_the_schema() -> None:
    data = codec.encode_value("k", {"proposer": "a", "confidence": None, "value": 3}, 1 << 20)
    assert decode_value("k", "propose", data, None) == {
        "proposer": "a",
        "confidence": None,
        "value": 3,
    }
    assert decode_value("k", "delete", data, None) is None
