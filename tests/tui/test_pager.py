"""The entry pager against a real board: ranked paging, filtered scans, and staying current
from the change log with bounded reads (never a rescan)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

import blackboard
from blackboard.tui.model import BoardReader, EntryRow
from blackboard.tui.pager import PAGE, EntryFilter, EntryPager


class CountingReader(BoardReader):
    """A reader that counts its round trips and the keys it reads rows for."""

    def __init__(self, board: blackboard.Board) -> None:
        super().__init__(board)
        self.calls: Counter[str] = Counter()
        self.rows_read = 0

    async def count(self, prefix: str = "") -> int:
        self.calls["count"] += 1
        return await super().count(prefix)

    async def keys_at(self, start: int, stop: int) -> list[str]:
        self.calls["keys_at"] += 1
        return await super().keys_at(start, stop)

    async def rows(self, keys: Sequence[str]) -> dict[str, EntryRow | None]:
        self.calls["rows"] += 1
        self.rows_read += len(keys)
        return await super().rows(keys)


async def fill(board: blackboard.Board, n: int, prefix: str = "item/") -> None:
    async with board.batch() as b:
        for i in range(n):
            b.put(f"{prefix}{i:05d}", {"n": i})


async def changes_since(board: blackboard.Board, rev: int) -> list[blackboard.Change]:
    return [c async for c in board.watch(since=rev, idle_timeout=0.05)]


def keys_of(pager: EntryPager) -> list[str | None]:
    return [pager.key_at(i) for i in range(len(pager))]


def test_filter_modes() -> None:
    assert EntryFilter().ranked and EntryFilter("ticket/*").ranked
    assert EntryFilter("ticket/*").prefix == "ticket/"
    assert not EntryFilter("ticket/*/triage").ranked
    assert EntryFilter("ticket/*/triage").prefix == "ticket/"
    assert not EntryFilter("*", writer="bot*").ranked
    assert not EntryFilter("*", divergent=True).ranked
    assert not EntryFilter("ticket/1").ranked
    with pytest.raises(blackboard.InvalidKeyError):
        EntryFilter("bad key!")


async def test_ranked_paging_reads_only_the_pages_asked(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 1000)
    await fill(tui_board, 5, prefix="a/")
    reader = CountingReader(tui_board)
    pager = EntryPager(reader, EntryFilter("item/*"))
    await pager.reset()
    assert len(pager) == 1000 and pager.key_at(0) is None
    assert await pager.load(950, 960)
    assert pager.key_at(950) == "item/00950" and pager.row_at(950).value == {"n": 950}  # type: ignore[union-attr]
    assert pager.key_at(0) is None  # page 0 was never read
    assert reader.calls["keys_at"] == 1 and reader.rows_read == 10
    assert not await pager.load(950, 960)  # cached: no round trip
    assert reader.calls["keys_at"] == 1
    pager2 = EntryPager(reader)
    await pager2.reset()
    assert len(pager2) == 1005
    await pager2.load(0, 6)
    first = ["a/00000", "a/00001", "a/00002", "a/00003", "a/00004", "item/00000"]
    assert keys_of(pager2)[:6] == first


async def test_scans_filter_by_glob_writer_and_schema(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 30, prefix="t/")
    other = tui_board.bind(writer="bot-7")
    await other.put("t/00003/triage", {"c": 1})
    await other.put("t/00004/triage", {"c": 2})
    await other.put("u/x", 1)
    pager = EntryPager(BoardReader(tui_board), EntryFilter("t/*/triage"))
    await pager.reset()
    while await pager.scan_step(budget=7):
        pass
    assert keys_of(pager) == ["t/00003/triage", "t/00004/triage"]
    assert pager.scanned == 32  # only the t/ range of the index was walked
    await pager.reset(EntryFilter("*", writer="bot-*"))
    while await pager.scan_step():
        pass
    assert keys_of(pager) == ["t/00003/triage", "t/00004/triage", "u/x"]
    await pager.reset(EntryFilter("t/*", schema="nothing"))
    while await pager.scan_step():
        pass
    assert len(pager) == 0


async def test_divergent_only(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 5, prefix="d/")
    a, b = tui_board.bind(writer="a"), tui_board.bind(writer="b")
    await a.propose("d/00001", {"x": 1})
    await b.propose("d/00001", {"x": 2})
    await a.propose("d/00002", {"x": 1})  # one proposal only: not divergent
    rev = await tui_board.revision()
    pager = EntryPager(BoardReader(tui_board), EntryFilter("d/*", divergent=True))
    await pager.reset()
    while await pager.scan_step():
        pass
    assert keys_of(pager) == ["d/00001"]
    await b.propose("d/00002", {"x": 9})  # now d/00002 disagrees too
    assert pager.apply(await changes_since(tui_board, rev))
    assert await pager.settle()
    assert keys_of(pager) == ["d/00001", "d/00002"]


async def test_ranked_view_follows_the_log_without_rescanning(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 3 * PAGE)
    reader = CountingReader(tui_board)
    pager = EntryPager(reader, EntryFilter("item/*"))
    await pager.reset()
    await pager.load(0, 30)
    await pager.load(2 * PAGE, 2 * PAGE + 30)
    rev = await tui_board.revision()
    reader.calls.clear()
    reader.rows_read = 0
    # an update of a row on screen: folded in from the log, no read at all
    await tui_board.put("item/00005", {"n": "changed"})
    assert pager.apply(await changes_since(tui_board, rev))
    assert not await pager.settle()
    assert pager.row_at(5).value == {"n": "changed"} and pager.row_at(5).version == 2  # type: ignore[union-attr]
    assert sum(reader.calls.values()) == 0
    # a new key in the middle: one count; pages before it stay, pages after are re-read
    rev = await tui_board.revision()
    await tui_board.put("item/00150x", {"n": "new"})
    await tui_board.delete("item/00010")
    pager.apply(await changes_since(tui_board, rev))
    assert await pager.settle()
    assert reader.calls == Counter({"count": 1})
    assert len(pager) == 3 * PAGE
    assert pager.key_at(0) is None  # page 0 held item/00010: dropped, re-read on demand
    await pager.load(2 * PAGE, 2 * PAGE + 30)
    assert pager.key_at(2 * PAGE) == "item/00200"
    await pager.load(PAGE + 49, PAGE + 51)
    assert keys_of(pager)[PAGE + 49 : PAGE + 51] == ["item/00150", "item/00150x"]
    assert reader.calls["keys_at"] == 2 and reader.rows_read <= 32


async def test_scan_view_follows_the_log(tui_board: blackboard.Board) -> None:
    await fill(tui_board, 20, prefix="s/")
    pager = EntryPager(BoardReader(tui_board), EntryFilter("s/*", writer="tester"))
    await pager.reset()
    while await pager.scan_step():
        pass
    assert len(pager) == 20
    rev = await tui_board.revision()
    await tui_board.bind(writer="someone-else").put("s/00003", {"n": "theirs"})
    await tui_board.put("s/00100", {"n": "mine"})
    await tui_board.delete("s/00004")
    await tui_board.put("z/elsewhere", 1)
    pager.apply(await changes_since(tui_board, rev))
    assert await pager.settle()
    got = keys_of(pager)
    assert "s/00003" not in got and "s/00004" not in got and "s/00100" in got
    assert "z/elsewhere" not in got and len(got) == 19
