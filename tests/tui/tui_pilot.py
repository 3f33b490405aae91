"""Running the TUI under Textual's Pilot in the tests' event loop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot
from tui_snapshots import screen_text

import blackboard
from blackboard.tui.app import BoardApp

SIZE = (120, 32)


@asynccontextmanager
async def running(
    board: blackboard.Board, *, user: str = "alice", start: str = "entries", **kw: Any
) -> AsyncIterator[tuple[BoardApp, Pilot[None]]]:
    app = BoardApp(board, user=user, follow_ms=50, batch_delay=0.02, start=start, **kw)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        yield app, pilot


async def until(
    pilot: Pilot[None], probe: Callable[[], object], wait: float = 10.0, what: str = ""
) -> None:
    """Let the app run until `probe()` is truthy; fail with the screen after `wait` seconds."""
    deadline = time.monotonic() + wait
    while not probe():
        if time.monotonic() > deadline:
            text = screen_text(pilot.app)
            raise AssertionError(f"timed out waiting for {what or probe}; screen:\n{text}")
        await pilot.pause(0.05)


def shows(pilot: Pilot[None], *texts: str) -> Callable[[], bool]:
    """A probe: the screen shows every one of `texts`."""
    return lambda: all(t in screen_text(pilot.app) for t in texts)
