"""Shared pieces of the CLI: the root app, common options, output, error handling.

Imports the engine (connect, settings, errors) and typer/rich/orjson; never imported by the
engine.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import orjson
import pydantic
import typer
from rich.console import Console

from blackboard.entry import ABSENT, ANY, Change, Entry, Expect
from blackboard.errors import BlackboardError

T = TypeVar("T")

app = typer.Typer(
    name="blackboard",
    help="Agents coordinating through a versioned Redis blackboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

BoardOpt = Annotated[
    str, typer.Option("--board", "-b", envvar="BLACKBOARD_BOARD", help="Board name.")
]
RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis",
        envvar="BLACKBOARD_REDIS_URL",
        help="Redis URL (redis://, rediss://, unix://). Required for commands that keep data.",
    ),
]
SERVE_WAIT = 30.0
"""Seconds a long-running process (controller, compactor, agent) keeps trying to reach a
server that is down or restarting before it gives up with exit 1."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line).")]


def need_url(url: str | None) -> str:
    """The URL, or exit 2 with a line saying how to get one."""
    if not url:
        err.print(
            "error: no Redis URL: pass --redis URL or set BLACKBOARD_REDIS_URL "
            "(`blackboard server` starts a private one and prints its URL)",
            highlight=False,
        )
        raise typer.Exit(2)
    return url


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`; a BlackboardError becomes one line on stderr and exit code 1."""
    try:
        return asyncio.run(coro)
    except BlackboardError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def parse_expect(text: str | None) -> int | Expect:
    """--expect: a version number, 'absent' or 'any'."""
    if text is None or text == "any":
        return ANY
    if text == "absent":
        return ABSENT
    try:
        version = int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use a version number, 'absent' or 'any'") from None
    if version < 1:
        raise typer.BadParameter("a version is a number >= 1")
    return version


def parse_json(text: str, what: str = "value") -> Any:
    """A JSON document from the command line ('-' reads stdin); bad JSON exits 2."""
    if text == "-":
        text = sys.stdin.read()
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} is not valid JSON: {exc}") from None


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"$base64": base64.b64encode(obj).decode()}
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def entry_dict(e: Entry) -> dict[str, Any]:
    c = e.causation
    return {
        "key": e.key,
        "value": e.value,
        "version": e.version,
        "revision": e.revision,
        "writer": e.writer,
        "time": e.time.isoformat(),
        "schema": e.schema,
        "schema_version": e.schema_version,
        "causation": None if c is None else {"activation": c.activation, "depth": c.depth},
        "deleted": e.deleted,
        "kind": e.kind,
    }


def change_dict(c: Change) -> dict[str, Any]:
    return {
        "revision": c.revision,
        "key": c.key,
        "version": c.version,
        "kind": c.kind,
        "value": c.value,
        "writer": c.writer,
        "time": c.time.isoformat(),
        "activation": c.activation,
    }
