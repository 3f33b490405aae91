"""Board commands: put, get, delete, history, keys, watch, server, demo (edge layer)."""

from __future__ import annotations

import asyncio
import shlex
import signal
from typing import Annotated

import typer
from rich.table import Table

from blackboard.board.connection import connect
from blackboard.board.names import check_pattern
from blackboard.cli.context import (
    BoardOpt,
    JsonOpt,
    RedisOpt,
    app,
    cell,
    change_dict,
    dumps,
    entry_dict,
    err,
    fail,
    need_url,
    out,
    parse_expect,
    parse_json,
    run,
    terminal_text,
    writer_id,
)
from blackboard.errors import BlackboardError
from blackboard.store.entry import ABSENT, Entry
from blackboard.store.server import RedisServer

ExpectOpt = Annotated[
    str | None,
    typer.Option("--expect", "-e", help="Expected version: a number, 'absent' or 'any'."),
]
IdemOpt = Annotated[
    str | None,
    typer.Option("--idempotency-key", "-i", help="Retrying with the same key applies once."),
]
WriterOpt = Annotated[
    str,
    typer.Option("--writer", help="Writer id recorded with the write.", callback=writer_id),
]


def _show_entries(entries: list[Entry], as_json: bool, title: str) -> None:
    if as_json:
        for e in entries:
            out.print(dumps(entry_dict(e)), highlight=False, markup=False)
        return
    table = Table(title=cell(title))
    for col in ("version", "revision", "kind", "writer", "time", "value"):
        table.add_column(col, overflow="fold")
    for e in entries:
        value = "(deleted)" if e.deleted else dumps(e.value)
        table.add_row(
            str(e.version),
            str(e.revision),
            cell(e.kind),
            cell(e.writer),
            e.time.strftime("%H:%M:%S.%f")[:-3],
            cell(value),
        )
    out.print(table)


@app.command()
def put(
    key: Annotated[str, typer.Argument(help="Entry key, e.g. ticket/1.")],
    value: Annotated[str, typer.Argument(help="JSON value ('-' reads stdin).")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    expect: ExpectOpt = None,
    idempotency_key: IdemOpt = None,
    writer: WriterOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Write a value (compare-and-set with --expect)."""
    url = need_url(redis)
    data = parse_json(value)
    exp = parse_expect(expect)

    async def go() -> Entry:
        async with connect(url, board=board, writer=writer) as b:
            return await b.put(key, data, expect=exp, idempotency_key=idempotency_key)

    e = run(go())
    if as_json:
        out.print(dumps(entry_dict(e)), highlight=False, markup=False)
    else:
        out.print(
            f"{e.key} version {e.version} at revision {e.revision}", highlight=False, markup=False
        )


@app.command()
def get(
    key: Annotated[str, typer.Argument(help="Entry key.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    version: Annotated[int | None, typer.Option(min=1, help="A past version.")] = None,
    at_revision: Annotated[int | None, typer.Option(min=0, help="As of a board revision.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read an entry (exit 1 when there is none)."""
    if version is not None and at_revision is not None:
        raise typer.BadParameter("give --version or --at-revision, not both")
    url = need_url(redis)

    async def go() -> Entry | None:
        async with connect(url, board=board) as b:
            return await b.get(key, version=version, at_revision=at_revision)

    e = run(go())
    if e is None:
        fail(f"no entry {key!r} on board {board!r}")
    if as_json:
        out.print(dumps(entry_dict(e)), highlight=False, markup=False)
    else:
        _show_entries([e], False, f"{board}: {key}")


@app.command()
def delete(
    key: Annotated[str, typer.Argument(help="Entry key.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    expect: ExpectOpt = None,
    idempotency_key: IdemOpt = None,
    writer: WriterOpt = "cli",
) -> None:
    """Delete an entry (a versioned tombstone)."""
    url = need_url(redis)
    exp = parse_expect(expect)

    async def go() -> Entry:
        async with connect(url, board=board, writer=writer) as b:
            return await b.delete(key, expect=exp, idempotency_key=idempotency_key)

    e = run(go())
    out.print(
        f"{e.key} deleted: version {e.version} at revision {e.revision}",
        highlight=False,
        markup=False,
    )


@app.command()
def history(
    key: Annotated[str, typer.Argument(help="Entry key.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many versions (newest first).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Retained versions of an entry, newest first."""
    url = need_url(redis)

    async def go() -> list[Entry]:
        async with connect(url, board=board) as b:
            return await b.history(key, limit=limit)

    _show_entries(run(go()), as_json, f"{board}: history of {key}")


@app.command()
def keys(
    pattern: Annotated[str, typer.Argument(help="Glob over entry keys.")] = "*",
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many keys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Live entry keys matching a pattern."""
    url = need_url(redis)

    async def go() -> list[str]:
        async with connect(url, board=board) as b:
            return await b.keys(pattern, limit=limit)

    found = run(go())
    if as_json:
        out.print(dumps(found), highlight=False, markup=False)
    else:
        for k in found:
            out.print(terminal_text(k), highlight=False, markup=False)


@app.command()
def watch(
    pattern: Annotated[str, typer.Argument(help="Glob over entry keys.")] = "*",
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    since: Annotated[
        int | None,
        typer.Option(min=0, help="Replay changes after this revision (default: now)."),
    ] = None,
    idle: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds without a change.")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many changes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow the change log in revision order."""
    url = need_url(redis)

    async def go() -> None:
        seen = 0
        check_pattern(pattern)  # a bad pattern is the one error line, before any note
        async with connect(url, board=board) as b:
            if since is not None:
                current = await b.revision()
                if since > current:
                    err.print(
                        f"note: board {board} is at revision {current}; waiting for revision "
                        f"{since + 1}",
                        highlight=False,
                        markup=False,
                    )
            async for c in b.watch(pattern, since=since, idle_timeout=idle):
                if as_json:
                    out.print(dumps(change_dict(c)), highlight=False, markup=False)
                else:
                    value = "(deleted)" if c.deleted else dumps(c.value)
                    out.print(
                        f"[bold]{c.revision}[/] {cell(c.key)} v{c.version} {cell(c.kind)} "
                        f"by {cell(c.writer)}: {cell(value)}",
                        highlight=False,
                    )
                seen += 1
                if count is not None and seen >= count:
                    return

    run(go())


@app.command()
def server(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="TCP port (default: a free one).")
    ] = None,
    appendonly: Annotated[bool, typer.Option(help="Turn on AOF persistence.")] = False,
) -> None:
    """Start a private Redis server and print the lines that point a shell at it: its URL
    and its password file (the password itself is never printed); stops on SIGTERM or
    Ctrl-C."""
    srv = RedisServer(tcp=True, port=port, appendonly=appendonly)
    try:
        srv.start()
    except BlackboardError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    # plain writes: these lines are for `eval` / `source`, never wrapped or styled
    out.file.write(f"export BLACKBOARD_REDIS_URL={shlex.quote(srv.bare_url)}\n")
    out.file.write(f"export BLACKBOARD_REDIS_PASSWORD_FILE={shlex.quote(srv.password_file)}\n")
    out.file.flush()

    async def wait() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        srv.close()
        err.print("server stopped", highlight=False)


@app.command()
def demo(board: BoardOpt = "demo", redis: RedisOpt = None) -> None:
    """A put/get/watch walk-through on the embedded default server (or --redis)."""

    async def go() -> None:
        async with connect(redis, board=board, writer="demo") as b:
            out.print(f"[bold]board[/] {board} on {'--redis' if redis else 'a private server'}")
            e = await b.put("ticket/1", {"title": "printer on fire", "state": "new"}, expect=ABSENT)
            out.print(f"put ticket/1 -> version {e.version}, revision {e.revision}")
            e = await b.put(
                "ticket/1", {"title": "printer on fire", "state": "triaged"}, expect=e.version
            )
            out.print(f"put ticket/1 (expect {e.version - 1}) -> version {e.version}")
            try:
                await b.put("ticket/1", {"state": "stale"}, expect=1)
            except BlackboardError as exc:
                out.print(f"a stale write is refused: {exc}", markup=False)
            first = await b.put("ticket/2", {"state": "new"}, idempotency_key="demo-once")
            again = await b.put("ticket/2", {"state": "new"}, idempotency_key="demo-once")
            out.print(f"retried write applied once: version {first.version} == {again.version}")
            total = None
            for _ in range(3):
                total = await b.apply("stats/tickets", "add", 1)
            out.print(f"server-side counter: {total.value if total else None}")
            out.print("[bold]change log[/]:")
            async for c in b.watch(since=0, idle_timeout=0.2):
                out.print(
                    f"  rev {c.revision}: {c.key} v{c.version} {c.kind} {dumps(c.value)}",
                    highlight=False,
                    markup=False,
                )
            _show_entries(await b.history("ticket/1"), False, "history of ticket/1")

    run(go())
