"""`blackboard.connect()`: from a URL (or the embedded default) to a ready `Board`.

Board layer entry point: imports board, durability, server, settings. URLs:

- ``redis://host:port/db``, ``unix:///path.sock`` and ``rediss://`` (TLS; the CA and client
  certificate come from ``BLACKBOARD_TLS_CA_FILE`` / ``_CERT_FILE`` / ``_KEY_FILE`` or the URL's
  ``ssl_ca_certs=`` query parameters);
- ``redis+cluster://host:port`` / ``rediss+cluster://`` for Redis Cluster (any node as seed):
  every key of a board shares the hash tag ``{board}``, so a board lives on one slot;
- ``redis+sentinel://[user:password@]host:port[,host:port...]/<service>[/<db>]`` for a primary
  found through Redis Sentinel (port 26379 when left out): the client asks the Sentinels for
  the current primary of ``<service>`` whenever it (re)connects, so a process follows a
  failover. The URL's credentials are the data nodes'; the Sentinels' come from
  ``BLACKBOARD_SENTINEL_USERNAME`` / ``_PASSWORD`` / ``_PASSWORD_FILE`` (none by default).

Credentials: the URL's user, or ``BLACKBOARD_REDIS_USERNAME`` and ``BLACKBOARD_REDIS_PASSWORD``
/ ``BLACKBOARD_REDIS_PASSWORD_FILE`` (never a command-line flag, so they stay out of ``ps``).
With no URL at all a private server is started on a temporary unix socket and stopped when the
context exits.

`connect(durability=...)` (or ``BLACKBOARD_DURABILITY``) sets when the board's writes return
(durability.py); a level the server cannot give is refused here, before anything is written.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.errors import (
    BoardUnavailableError,
    DurabilityUnsupportedError,
    LibraryMissingError,
    PermissionDeniedError,
)
from blackboard.settings import Settings
from blackboard.store import functions
from blackboard.store.durability import Durability, check_support
from blackboard.store.keys import BoardKeys, check_board, scope_of_user
from blackboard.store.server import RedisServer

SCHEMES = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+cluster://",
    "rediss+cluster://",
    "redis+sentinel://",
)

RedisClient = Redis | RedisCluster


def _credentials(settings: Settings, *, sentinel: bool = False) -> dict[str, Any]:
    """Username and password for the data nodes (or, with `sentinel`, for the Sentinels)."""
    kwargs: dict[str, Any] = {}
    if sentinel:
        username = settings.sentinel_username
        password, password_file = settings.sentinel_password, settings.sentinel_password_file
    else:
        username = settings.redis_username
        password, password_file = settings.redis_password, settings.redis_password_file
    if username:
        kwargs["username"] = username
    if password_file:
        try:
            password = Path(password_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise BoardUnavailableError(
                f"cannot read the {'Sentinel' if sentinel else 'Redis'} password file "
                f"{password_file}: {exc}"
            ) from None
    if password:
        kwargs["password"] = password
    return kwargs


def _tls(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if settings.tls_ca_file:
        kwargs["ssl_ca_certs"] = settings.tls_ca_file
    if settings.tls_cert_file:
        kwargs["ssl_certfile"] = settings.tls_cert_file
    if settings.tls_key_file:
        kwargs["ssl_keyfile"] = settings.tls_key_file
    return kwargs


def redis_from_url(url: str, settings: Settings) -> Any:
    """An asyncio client (`Redis` or `RedisCluster`) for `url`, whose commands are resent
    after a dropped connection (safe: every write carries an idempotency key). A user set in
    `settings` replaces the URL's user and password. Raises BoardUnavailableError for an
    unusable URL (its message shows the URL without its password)."""
    from blackboard.store.redact import redact_url, split_credentials

    shown = redact_url(url)
    if not url.startswith(SCHEMES):
        raise BoardUnavailableError(
            f"unsupported Redis URL {shown!r}: use redis://, rediss://, unix://, "
            "redis+cluster://, rediss+cluster:// or redis+sentinel://"
        )
    retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.25), retries=6)
    kwargs: dict[str, Any] = {
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        "socket_connect_timeout": settings.connect_timeout,
        "health_check_interval": 0,
        "socket_timeout": settings.socket_timeout,
        **_credentials(settings),
    }
    if not url.startswith("unix://"):
        kwargs["socket_keepalive"] = True  # finds a dead peer when no reply timeout is set
    tls = url.startswith("rediss")
    if tls:
        kwargs.update(_tls(settings))
    secret: str | None = None
    try:
        bare, _user, secret = split_credentials(url)
        if settings.redis_username:  # the URL's credentials would win over kwargs in redis-py
            url = bare
        if "+cluster://" in url:
            plain = url.replace("+cluster://", "://", 1)
            kwargs.pop("health_check_interval")
            return RedisCluster.from_url(plain, **kwargs)
        if url.startswith("redis+sentinel://"):
            return _sentinel_primary(url, kwargs, settings)
        return Redis.from_url(url, **kwargs)
    except (ValueError, TypeError, RedisError) as exc:
        detail = str(exc).replace(secret, "***") if secret else str(exc)
        # not chained: the cause's text (shown in tracebacks) may hold the password
        raise BoardUnavailableError(f"bad Redis URL {shown!r}: {detail}") from None


class SentinelRedis(Redis):
    """The primary of a Sentinel service (`Redis` on a ``SentinelConnectionPool``): each
    connection asks the Sentinels for the primary's address, and one that finds its server
    demoted to a replica reconnects to the new primary. Closing it closes the connections
    to the Sentinels too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self.connection_pool.sentinel_manager.aclose()  # type: ignore[attr-defined]


def _sentinel_primary(url: str, kwargs: dict[str, Any], settings: Settings) -> SentinelRedis:
    """A client of the primary named by a ``redis+sentinel://`` URL (see the module
    docstring); raises ValueError for a malformed one."""
    rest = url[len("redis+sentinel://") :]
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, sep, secret = userinfo.partition(":")
        if user and not settings.redis_username:
            kwargs["username"] = unquote(user)
        if sep and not settings.redis_username:
            kwargs["password"] = unquote(secret)
    sentinels = []
    for item in filter(None, hosts.split(",")):
        host, colon, port = item.rpartition(":")
        if not colon or "]" in port:  # no port given (an IPv6 address ends in ']')
            host, port = item, "26379"
        if not host.strip("[]") or not port.isdigit():
            raise ValueError(f"{item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    parts = [p for p in path.split("?")[0].split("/") if p]
    if not sentinels or not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("expected redis+sentinel://host:port[,host:port...]/<service>[/<db>]")
    if len(parts) == 2:
        kwargs["db"] = int(parts[1])
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.connect_timeout,
        **_credentials(settings, sentinel=True),
    }
    manager = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **kwargs)
    client: SentinelRedis = manager.master_for(unquote(parts[0]), redis_class=SentinelRedis)
    return client


def _username(redis: Any) -> str | None:
    """The ACL user a client logs in as (from its connection settings)."""
    pool = getattr(redis, "connection_pool", None)
    if pool is not None:
        name = pool.connection_kwargs.get("username")
    else:  # a cluster client keeps the settings of its nodes' connections
        name = getattr(redis, "connection_kwargs", {}).get("username")
    return name if isinstance(name, str) else None


def default_writer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def _ready(redis: Any, board: str, durability: Durability) -> None:
    """Ping the board's server and check that it has this client's functions library (an
    admin connection loads it when missing) and can give `durability`; raises
    BoardUnavailableError, LibraryMissingError, DurabilityUnsupportedError,
    PermissionDeniedError."""
    rev = BoardKeys(board).rev
    try:
        if isinstance(redis, RedisCluster):
            await redis.initialize()
            node = redis.get_node_from_key(rev)
            await redis.execute_command("PING", target_nodes=node)
            await functions.check_library(redis, node)
        else:
            await redis.ping()
            await functions.check_library(redis)
        await check_support(redis, rev, durability)
    except (LibraryMissingError, DurabilityUnsupportedError, PermissionDeniedError):
        raise
    except (RedisError, RedisClusterException, OSError) as exc:
        err = wrap_redis_error(exc) if isinstance(exc, RedisError) else None
        raise (err or BoardUnavailableError(f"Redis is unreachable: {exc}")) from exc


@asynccontextmanager
async def connect(
    url: str | None = None,
    board: str | None = None,
    writer: str | None = None,
    *,
    settings: Settings | None = None,
    wait: float | None = None,
    durability: Durability | str | None = None,
) -> AsyncIterator[Board]:
    """Connect to `board` as `writer`; see the module docstring for URLs. An unreachable
    server is retried for `wait` seconds (default `BLACKBOARD_CONNECT_WAIT`, 0): long-running
    processes started beside a server that is (re)starting use it. `durability`: when the
    board's writes return, 'local', 'replicated' or 'fsynced' or a `Durability` (default
    ``BLACKBOARD_DURABILITY``, 'local'); `board.bind(durability=...)` changes it per view.
    Raises BoardUnavailableError (unreachable), ServerNotFoundError, InvalidKeyError,
    DurabilityUnsupportedError (the server cannot give `durability`), ValueError (no such
    level)."""
    settings = settings or Settings()
    board = check_board(board or settings.board)
    level = Durability.of(durability, settings)
    url = url or settings.redis_url
    deadline = time.monotonic() + (settings.connect_wait if wait is None else wait)
    server: RedisServer | None = None
    if url is None:
        server = RedisServer().start()
        url = server.url
    try:
        while True:
            redis = redis_from_url(url, settings)
            try:
                await _ready(redis, board, level)
                break
            except (PermissionDeniedError, LibraryMissingError, DurabilityUnsupportedError):
                await redis.aclose()
                raise
            except BoardUnavailableError:
                await redis.aclose()
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.2)
        try:
            scope = settings.idempotency_scope or scope_of_user(_username(redis))
            yield Board(
                redis, board, writer or default_writer(), settings, scope=scope, durability=level
            )
        finally:
            await redis.aclose()
    finally:
        if server is not None:
            server.close()
