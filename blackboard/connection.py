"""`blackboard.connect()`: from a URL (or the embedded default) to a ready `Board`.

Board layer entry point: imports board, server, settings. URLs: ``redis://``, ``rediss://``
(TLS; ``ssl_ca_certs=`` etc. as query parameters), ``unix:///path.sock``. With no URL and no
``BLACKBOARD_REDIS_URL``, a private server is started on a temporary unix socket and stopped
when the context exits.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from blackboard import scripts
from blackboard.board import Board, wrap_redis_error
from blackboard.errors import BoardUnavailableError
from blackboard.keys import check_board
from blackboard.server import RedisServer
from blackboard.settings import Settings

SCHEMES = ("redis://", "rediss://", "unix://")


def redis_from_url(url: str, settings: Settings) -> Redis:
    """An asyncio client for `url` whose commands are resent after a dropped connection
    (safe: every write carries an idempotency key). Raises BoardUnavailableError."""
    if not url.startswith(SCHEMES):
        raise BoardUnavailableError(
            f"unsupported Redis URL {url!r}: use redis://, rediss:// or unix://"
        )
    retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.25), retries=6)
    try:
        return Redis.from_url(
            url,
            retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
            socket_connect_timeout=settings.connect_timeout,
            health_check_interval=0,
            client_name=None,
        )
    except (ValueError, RedisError) as exc:
        raise BoardUnavailableError(f"bad Redis URL {url!r}: {exc}") from exc


def default_writer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@asynccontextmanager
async def connect(
    url: str | None = None,
    board: str | None = None,
    writer: str | None = None,
    *,
    settings: Settings | None = None,
) -> AsyncIterator[Board]:
    """Connect to `board` as `writer`; see the module docstring for URLs.
    Raises BoardUnavailableError (unreachable), ServerNotFoundError, InvalidKeyError."""
    settings = settings or Settings()
    board = check_board(board or settings.board)
    url = url or settings.redis_url
    server: RedisServer | None = None
    if url is None:
        server = RedisServer().start()
        url = server.url
    redis = redis_from_url(url, settings)
    try:
        try:
            await redis.ping()
            for script in scripts.ALL:
                await script.ensure_loaded(redis)
        except (RedisError, OSError) as exc:
            err = wrap_redis_error(exc) if isinstance(exc, RedisError) else None
            raise (err or BoardUnavailableError(f"Redis is unreachable: {exc}")) from exc
        yield Board(redis, board, writer or default_writer(), settings)
    finally:
        await redis.aclose()
        if server is not None:
            server.close()
