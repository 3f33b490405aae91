"""``redis+sentinel://`` URLs: parsed into a Sentinel-managed primary client, with the
data nodes' credentials from the URL and the Sentinels' from the settings; bad ones are one
clear error that never shows the password."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import blackboard
from blackboard.board.connection import SentinelRedis, redis_from_url
from blackboard.store.server import free_port


async def test_url_names_sentinels_service_db_and_credentials(tmp_path: Path) -> None:
    secret = tmp_path / "sentinel.password"
    secret.write_text("s3ntinel\n")
    settings = blackboard.Settings(sentinel_password_file=str(secret), sentinel_username="mon")
    url = "redis+sentinel://app:p%40ss@10.0.0.1:26380,10.0.0.2,[::1]:5000/orders/2"
    client = redis_from_url(url, settings)
    try:
        assert isinstance(client, SentinelRedis)
        pool = client.connection_pool
        assert pool.service_name == "orders"  # type: ignore[attr-defined]
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "p@ss", 2)
        sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
        addresses = [
            (
                s.connection_pool.connection_kwargs["host"],
                s.connection_pool.connection_kwargs["port"],
            )
            for s in sentinels
        ]
        assert addresses == [("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 5000)]
        first = sentinels[0].connection_pool.connection_kwargs
        assert (first["username"], first["password"]) == ("mon", "s3ntinel")
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:hunter2@127.0.0.1:26379",  # no service
        "redis+sentinel://:hunter2@127.0.0.1:26379/a/b/c",
        "redis+sentinel://:hunter2@127.0.0.1:port/svc",
        "redis+sentinel://:hunter2@/svc",
        "redis+sentinel://:hunter2@127.0.0.1:26379/svc/db",
    ],
)
def test_bad_urls_are_one_error_without_the_password(url: str) -> None:
    with pytest.raises(blackboard.BoardUnavailableError) as caught:
        redis_from_url(url, blackboard.Settings())
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


async def test_no_sentinel_answering_is_a_clear_error_in_bounded_time() -> None:
    started = time.monotonic()
    with pytest.raises(blackboard.BoardUnavailableError):
        async with blackboard.connect(f"redis+sentinel://127.0.0.1:{free_port()}/svc", board="x"):
            pass
    assert time.monotonic() - started < 30
