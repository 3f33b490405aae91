"""Schemas: pydantic models bound to key patterns validate writes and shape reads."""

from __future__ import annotations

from typing import Any, ClassVar

import pydantic
import pytest

import blackboard
from blackboard import Put
from blackboard.board.schema import SchemaVersionError


class Ticket(pydantic.BaseModel):
    __schema_version__: ClassVar[int] = 2

    title: str
    priority: int = 0
    tags: list[str] = []


class Note(pydantic.BaseModel):
    text: str


async def test_invalid_write_names_key_and_field_and_writes_nothing(
    board: blackboard.Board, board_state: Any
) -> None:
    board.schema("ticket/*", Ticket)
    before = await board_state(board)
    with pytest.raises(blackboard.ValidationError) as info:
        await board.put("ticket/1", {"title": "printer", "priority": "urgent"})
    err = info.value
    assert isinstance(err, blackboard.InvalidValueError)
    assert err.key == "ticket/1" and err.schema == "Ticket"
    assert err.fields == ["priority"]
    assert "ticket/1" in str(err) and "priority" in str(err)

    with pytest.raises(blackboard.ValidationError) as info:
        await board.put("ticket/1", {"priority": 1, "tags": [1, "ok", {}]})
    assert sorted(info.value.fields) == ["tags.0", "tags.2", "title"]

    with pytest.raises(blackboard.ValidationError):  # inside a transaction: nothing at all
        await board.transact([Put("other", 1), Put("ticket/2", {"title": None})])
    with pytest.raises(blackboard.ValidationError):
        await board.update("ticket/3", lambda v: {"title": 3})
    assert await board_state(board) == before


async def test_reads_return_model_instances(board: blackboard.Board) -> None:
    board.schema("ticket/*", Ticket)
    written = await board.put("ticket/1", {"title": "printer", "priority": "3"})
    assert written.value == Ticket(title="printer", priority=3)
    assert (written.schema, written.schema_version) == ("Ticket", 2)
    await board.put("ticket/1", Ticket(title="printer", priority=5, tags=["hw"]))
    got = await board.get("ticket/1")
    assert got is not None and isinstance(got.value, Ticket)
    assert got.value == Ticket(title="printer", priority=5, tags=["hw"])
    assert (got.schema, got.schema_version) == ("Ticket", 2)
    old = await board.get("ticket/1", version=1)
    assert old is not None and old.value == Ticket(title="printer", priority=3)
    assert all(isinstance(e.value, Ticket) for e in await board.history("ticket/1"))
    # update hands the function a model instance and accepts one back
    e = await board.update("ticket/1", lambda t: t.model_copy(update={"priority": 9}))
    assert isinstance(e.value, Ticket) and e.value.priority == 9
    # keys outside the pattern are untouched by the schema
    await board.put("user/1", {"title": 1})
    assert (await board.get("user/1")).value == {"title": 1}  # type: ignore[union-attr]


async def test_a_client_without_the_schema_sees_plain_data(
    board: blackboard.Board, redis_server: blackboard.RedisServer
) -> None:
    board.schema("ticket/*", Ticket)
    await board.put("ticket/1", {"title": "x"})
    async with blackboard.connect(redis_server.url, board=board.name) as plain:
        got = await plain.get("ticket/1")
    assert got is not None
    assert got.value == {"title": "x", "priority": 0, "tags": []}
    assert got.schema == "Ticket"


async def test_watch_returns_model_instances(board: blackboard.Board) -> None:
    board.schema("ticket/*", Ticket)
    board.schema("ticket/notes/*", Note)  # the longer pattern wins
    await board.put("ticket/1", {"title": "a"})
    await board.put("ticket/notes/1", {"text": "b"})
    await board.put("misc", {"x": 1})
    await board.delete("ticket/1")
    changes = [c async for c in board.watch(since=0, idle_timeout=0.1)]
    assert [(c.key, c.value) for c in changes] == [
        ("ticket/1", Ticket(title="a")),
        ("ticket/notes/1", Note(text="b")),
        ("misc", {"x": 1}),
        ("ticket/1", None),
    ]
    assert changes[-1].deleted


async def test_reducers_are_refused_on_schema_keys(board: blackboard.Board) -> None:
    board.schema("ticket/*", Ticket)
    with pytest.raises(blackboard.InvalidValueError) as info:
        await board.apply("ticket/1", "append", 1)
    assert info.value.key == "ticket/1"
    assert await board.revision() == 0


async def test_stored_data_that_no_longer_fits_is_corrupt(board: blackboard.Board) -> None:
    await board.put("ticket/1", {"title": 1})  # written before the schema was bound
    board.schema("ticket/*", Ticket)
    with pytest.raises(blackboard.CorruptEntryError) as info:
        await board.get("ticket/1")
    assert info.value.key == "ticket/1" and "title" in str(info.value)


def test_binding_a_non_model_is_refused(board: blackboard.Board) -> None:
    with pytest.raises(TypeError):
        board.schema("ticket/*", dict)  # type: ignore[arg-type]
    with pytest.raises(blackboard.InvalidKeyError):
        board.schema("bad pattern", Ticket)


class TicketV1(pydantic.BaseModel):
    title: str
    labels: list[str] = []


class TicketV2(pydantic.BaseModel):
    """v2 renamed labels to tags and made priority required; no migration."""

    __schema_version__: ClassVar[int] = 2
    model_config = pydantic.ConfigDict(extra="forbid")

    title: str
    priority: int
    tags: list[str] = []


def _v1_to_v2(v: Any) -> Any:
    return {"title": v["title"], "priority": 0, "tags": v.get("labels", [])}


class TicketV2Migrated(TicketV2):
    __schema_migrations__: ClassVar[dict[int, Any]] = {1: _v1_to_v2}


async def _v1_entry(board: blackboard.Board, redis_server: blackboard.RedisServer) -> None:
    async with blackboard.connect(redis_server.url, board=board.name) as old:
        old.schema("ticket/*", TicketV1)
        await old.put("ticket/1", {"title": "printer", "labels": ["hw"]})


async def test_an_old_entry_without_a_migration_names_both_versions(
    board: blackboard.Board, redis_server: blackboard.RedisServer
) -> None:
    await _v1_entry(board, redis_server)
    board.schema("ticket/*", TicketV2)
    with pytest.raises(SchemaVersionError) as info:
        await board.get("ticket/1")
    err = info.value
    assert isinstance(err, blackboard.CorruptEntryError)  # callers that catch it still do
    assert (err.key, err.schema, err.stored, err.expected) == ("ticket/1", "TicketV2", 1, 2)
    assert str(err).startswith(
        "schema version mismatch on 'ticket/1': the entry has schema version 1, this "
        "reader's TicketV2 is version 2: no migration from v1"
    )
    assert "no migration from v1" in str(err) and "__schema_migrations__" in str(err)
    assert "corrupt" not in str(err)


async def test_migrations_upgrade_old_entries_on_read(
    board: blackboard.Board, redis_server: blackboard.RedisServer
) -> None:
    await _v1_entry(board, redis_server)
    board.schema("ticket/*", TicketV2Migrated)
    got = await board.get("ticket/1")
    assert got is not None and got.schema_version == 1  # what is stored is unchanged
    assert got.value == TicketV2Migrated(title="printer", priority=0, tags=["hw"])
    e = await board.update("ticket/1", lambda t: t.model_copy(update={"priority": 2}))
    assert e.schema_version == 2 and e.value.priority == 2
    assert [x.value.priority for x in await board.history("ticket/1")] == [2, 0]


class StrictTicketV1(TicketV1):
    model_config = pydantic.ConfigDict(extra="forbid")


async def test_a_newer_entry_asks_for_a_newer_reader(
    board: blackboard.Board, redis_server: blackboard.RedisServer
) -> None:
    board.schema("ticket/*", TicketV2)
    await board.put("ticket/1", {"title": "x", "priority": 1})
    async with blackboard.connect(redis_server.url, board=board.name) as old:
        old.schema("ticket/*", TicketV1)  # it validates as it is: accepted
        assert (await old.get("ticket/1")).value == TicketV1(title="x")  # type: ignore[union-attr]
        old.schema("ticket/*", StrictTicketV1)
        with pytest.raises(SchemaVersionError) as info:
            await old.get("ticket/1")
    assert (info.value.stored, info.value.expected) == (2, 1)
    assert "upgrade the reader" in str(info.value)


async def test_a_failing_migration_is_reported_not_raised_raw(
    board: blackboard.Board, redis_server: blackboard.RedisServer
) -> None:
    class Broken(TicketV2):
        __schema_migrations__: ClassVar[dict[int, Any]] = {1: lambda v: v["missing"]}

    await _v1_entry(board, redis_server)
    board.schema("ticket/*", Broken)
    with pytest.raises(SchemaVersionError) as info:
        await board.get("ticket/1")
    assert "the migration from v1 failed: KeyError('missing')" in str(info.value)


def test_migrations_must_map_older_versions_to_functions(board: blackboard.Board) -> None:
    for bad in ({2: _v1_to_v2}, {0: _v1_to_v2}, {1: "not callable"}, [_v1_to_v2]):

        class Bad(TicketV2):
            __schema_migrations__: ClassVar[Any] = bad

        with pytest.raises(TypeError, match="__schema_migrations__"):
            board.schema("ticket/*", Bad)
