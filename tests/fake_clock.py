"""A fake `monotonic` and `sleep` pair for tests of what runs on a timer (lease renewal,
heartbeats): time moves only when the test calls `advance`."""

from __future__ import annotations

import asyncio


class FakeClock:
    """`monotonic()` returns `now`; `sleep(d)` returns once `advance` has moved `now` past
    the moment it was called plus `d`. `sleeping` lists (due, waker) of pending sleeps."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeping: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.now + delay, wake)
        self.sleeping.append(entry)
        try:
            await wake
        finally:
            if entry in self.sleeping:  # cancelled before it was due
                self.sleeping.remove(entry)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, wake in list(self.sleeping):
            if due <= self.now:
                self.sleeping.remove((due, wake))
                if not wake.done():
                    wake.set_result(None)
