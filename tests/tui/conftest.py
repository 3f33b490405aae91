"""Fixtures of the TUI tests: a board on one real server (the TUI reads Lua, streams and
consumer groups; running it on both server kinds would only double the time) and a helper
that runs the app under Textual's Pilot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

import blackboard
from blackboard.store.server import RedisServer


@pytest.fixture
async def tui_board(single_server: RedisServer) -> AsyncIterator[blackboard.Board]:
    name = "tui" + uuid.uuid4().hex[:10]
    async with blackboard.connect(single_server.url, board=name, writer="tester") as b:
        yield b
