"""update() without an idempotency key keeps its record only as long as put() does.

A hot key updated at 1000/s would otherwise hold 86 million records (about 10 GB) at the
24-hour TTL meant for keys a caller chose and may replay.
"""

from __future__ import annotations

import blackboard


async def test_update_with_a_generated_key_uses_the_short_ttl(board: blackboard.Board) -> None:
    await board.update("n", lambda v: (v or 0) + 1)
    await board.update("n", lambda v: (v or 0) + 1, idempotency_key="caller-chose-this")
    short, long = board.settings.auto_idempotency_ttl, board.settings.idempotency_ttl
    prefix = board.keys_.idem_prefix
    ttls = {
        k.decode()[len(prefix) :]: await board.redis.ttl(k)
        async for k in board.redis.scan_iter(match=prefix + "*")
    }
    assert ttls.pop("caller-chose-this") > short
    assert len(ttls) == 1 and 0 < next(iter(ttls.values())) <= short < long
