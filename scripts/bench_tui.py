"""How the TUI copes with a big board: 100,000 entries, measured at two levels.

read model: the entry pager's reads (count + the page on screen by rank, jumps to the end
and the middle, a prefix filter, full scans for a glob and for a writer filter) and folding
a batch of 500 changes from the log. headless TUI: the real app under Textual's Pilot (no
terminal), timing from a key press until the screen shows its result: start-up to the
first rows, End to the last row, ten Page Downs, a filter typed in, and a live change
appearing. Every figure is one run's wall time on this machine; nothing is cached between
the steps except what the app itself keeps.

    python scripts/bench_tui.py [--entries 100000] [--redis URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

import blackboard
from blackboard.store.server import RedisServer
from blackboard.tui.model import BoardReader
from blackboard.tui.pager import EntryFilter, EntryPager

WRITERS = ("triage@1", "specialist@2", "intake", "resolver@3")


async def fill(board: blackboard.Board, n: int) -> float:
    t0 = time.perf_counter()
    views = [board.bind(writer=w) for w in WRITERS]
    for start in range(0, n, 2000):
        for w, view in enumerate(views):
            async with view.batch() as b:
                for i in range(start + w, min(n, start + 2000), len(views)):
                    b.put(f"ticket/{i:06d}", {"subject": f"ticket {i}", "n": i})
    return time.perf_counter() - t0


async def timed(what: str, out: dict[str, float], fn: Callable[[], Awaitable[Any]]) -> Any:
    t0 = time.perf_counter()
    res = await fn()
    out[what] = round((time.perf_counter() - t0) * 1000, 1)
    return res


async def read_model(board: blackboard.Board, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    reader = BoardReader(board)
    pager = EntryPager(reader)
    await timed("count (reset, '*')", out, pager.reset)
    await timed("first screen (30 rows)", out, lambda: pager.load(0, 30))
    await timed("jump to the end (30 rows)", out, lambda: pager.load(n - 30, n))
    await timed("jump to the middle (30 rows)", out, lambda: pager.load(n // 2, n // 2 + 30))
    f = EntryFilter(f"ticket/{n // 2:06d}"[:9] + "*")
    await timed(f"prefix filter {f.pattern} (count)", out, lambda: pager.reset(f))
    await timed("prefix filter first screen", out, lambda: pager.load(0, 30))

    async def full_scan(filt: EntryFilter) -> int:
        await pager.reset(filt)
        first = None
        t0 = time.perf_counter()
        while await pager.scan_step():
            if first is None and len(pager) >= 30:
                first = time.perf_counter() - t0
        out[f"scan {filt.describe()}: first 30 matches"] = round((first or 0) * 1000, 1)
        return len(pager)

    matched = await timed("glob */00042* full scan", out, lambda: full_scan(EntryFilter("*0042*")))
    out["glob matches"] = matched
    matched = await timed(
        "writer=intake full scan (reads every row)",
        out,
        lambda: full_scan(EntryFilter("*", writer="intake")),
    )
    out["writer matches"] = matched
    await pager.reset()
    await pager.load(0, 30)
    rev = await board.revision()
    async with board.batch() as b:
        for i in range(500):
            b.put(f"ticket/{(i * 197) % n:06d}", {"n": -i})
    changes = [c async for c in board.watch(since=rev, idle_timeout=0.2)]

    async def fold() -> None:
        pager.apply(changes)
        await pager.settle()

    await timed("fold 500 changes from the log", out, fold)
    return out


async def headless(board: blackboard.Board, n: int) -> dict[str, float]:
    from textual.pilot import Pilot

    from blackboard.tui.app import BoardApp

    out: dict[str, float] = {}
    app = BoardApp(board, user="bench", follow_ms=100, batch_delay=0.05)

    def text() -> str:
        import io

        from rich.console import Console

        w, h = app.size
        console = Console(
            width=w,
            height=h,
            file=io.StringIO(),
            record=True,
            force_terminal=True,
            color_system=None,
            legacy_windows=False,
            safe_box=False,
        )
        console.print(app.screen._compositor.render_update(full=True))
        return console.export_text()

    async def until(pilot: Pilot[None], *wanted: str, what: str) -> None:
        t0 = time.perf_counter()
        while not all(w in text() for w in wanted):
            if time.perf_counter() - t0 > 20:
                raise RuntimeError(f"{what}: gave up\n{text()}")
            await pilot.pause(0.005)
        out[what] = round((time.perf_counter() - t0) * 1000, 1)

    t0 = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, f"{n:,} entries", "ticket/000000", what="start-up to the first rows")
        out["start-up to the first rows"] = round((time.perf_counter() - t0) * 1000, 1)
        # keys go straight to the bindings (Pilot's press also waits until the process is
        # idle, which would time the harness, not the app); the clock stops when the
        # screen shows the row the cursor landed on
        table = app.screen.query_one("RowTable")
        for key in ("down", "pagedown", "end", "pageup", "home"):
            worst = total = 0.0
            for _ in range(10):
                t1 = time.perf_counter()
                await app._check_bindings(key)
                row = table.cursor  # type: ignore[attr-defined]
                await until(pilot, f"ticket/{row:06d} ", what="_")
                took = time.perf_counter() - t1
                worst, total = max(worst, took), total + took
            del out["_"]
            out[f"key {key}: mean of 10"] = round(total * 100, 1)
            out[f"key {key}: worst of 10"] = round(worst * 1000, 1)
        digits = f"{n // 2:06d}"[:2]  # a prefix holding about a tenth of the board
        hits = sum(1 for i in range(n) if f"{i:06d}".startswith(digits))
        first = f"ticket/{digits}0000"
        await pilot.press("slash", *f"ticket/{digits}*", "enter")
        await until(pilot, f"{hits:,} entries", first, what="a prefix filter typed")
        await board.put(first + "x", {"live": True})
        await until(pilot, f"{hits + 1:,} entries", first + "x", what="a new entry appears (log)")
        # a writer filter scans every row in the background: keys while it runs
        await pilot.press("c")
        await until(pilot, f"{n + 1:,} entries", what="_")
        await pilot.press("slash", "tab", "tab", *"intake", "enter")
        await until(pilot, "writer=intake", what="_")
        t1 = time.perf_counter()
        worst = total = 0.0
        presses = 0
        while not app.pager.scan_done or not presses:
            t2 = time.perf_counter()
            await app._check_bindings("down")
            row = table.cursor  # type: ignore[attr-defined]
            key = app.screen.app.pager.key_at(row)  # type: ignore[attr-defined]
            await until(pilot, f"{key} ", what="_")
            took = time.perf_counter() - t2
            worst, total, presses = max(worst, took), total + took, presses + 1
        del out["_"]
        out["writer=intake scan in the TUI: seconds"] = round(time.perf_counter() - t1, 1)
        out[f"key down during that scan: mean of {presses}"] = round(total / presses * 1000, 1)
        out["key down during that scan: worst"] = round(worst * 1000, 1)
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = None
    url = args.redis
    if url is None:
        server = RedisServer(tcp=True).start()
        url = server.url
    try:
        async with blackboard.connect(url, board=args.board, writer="bench") as board:
            existing = len(await board.keys("ticket/*", limit=1))
            fill_s = 0.0 if existing else await fill(board, args.entries)
            result: dict[str, Any] = {"entries": args.entries, "fill_seconds": round(fill_s, 1)}
            result["read_model_ms"] = await read_model(board, args.entries)
            result["headless_tui_ms"] = await headless(board, args.entries)
            return result
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--redis", help="a server to use (default: a private one)")
    p.add_argument("--board", default="bench-tui")
    p.add_argument("--json", action="store_true")
    ns = p.parse_args()
    res = asyncio.run(main(ns))
    if ns.json:
        sys.stdout.write(orjson.dumps(res).decode() + "\n")
    else:
        print(f"{res['entries']:,} entries (filled in {res['fill_seconds']} s)")
        for section in ("read_model_ms", "headless_tui_ms"):
            print(section.replace("_ms", " (ms)") + ":")
            for k, v in res[section].items():
                print(f"  {k:48s} {v:>10,}")
