"""`blackboard activation list|show|retry|cancel`: dead letters and retries (edge layer;
thin commands over steering)."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer
from rich.table import Table

from blackboard.board.connection import connect
from blackboard.cli.context import (
    BoardOpt,
    JsonOpt,
    RedisOpt,
    app,
    cell,
    dumps,
    err,
    fail,
    need_url,
    out,
    run,
)
from blackboard.control import steering

activation_app = typer.Typer(help="Dead letters and retries of activations.", no_args_is_help=True)
app.add_typer(activation_app, name="activation")

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept on the record).")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who asks (default: human:<login name>).")
]


def _actor(actor: str | None) -> str:
    return actor or f"human:{getpass.getuser()}"


@activation_app.command("list")
def list_(
    failed: Annotated[
        bool, typer.Option("--failed", help="Dead letters (the only list so far).")
    ] = True,
    role: Annotated[str | None, typer.Option("--role", help="Only this role.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows.")] = 100,
    redis: RedisOpt = None,
    board: BoardOpt = "demo",
    as_json: JsonOpt = False,
) -> None:
    """Activations that failed after their last attempt, newest first."""
    url = need_url(redis)

    async def go() -> list[dict[str, Any]]:
        async with connect(url, board=board) as b:
            return await steering.dead_letters(b, role, limit)

    rows = run(go())
    if as_json:
        out.print(dumps(rows), highlight=False, markup=False, soft_wrap=True)
        return
    table = Table("activation", "role", "key", "version", "attempt", "error")
    for r in rows:
        table.add_row(
            *(
                cell(x)
                for x in (
                    r["id"],
                    r["role"],
                    r["key"],
                    r["version"],
                    r["attempt"],
                    r["error"] or "",
                )
            )
        )
    out.print(table)


@activation_app.command("show")
def show(
    activation_id: Annotated[str, typer.Argument(help="Activation id.")],
    redis: RedisOpt = None,
    board: BoardOpt = "demo",
) -> None:
    """One activation's record: state, attempt, next due time, last error."""
    url = need_url(redis)

    async def go() -> dict[str, Any] | None:
        async with connect(url, board=board) as b:
            return await steering.activation(b, activation_id)

    rec = run(go())
    if rec is None:
        fail(f"no activation {activation_id!r} on board {board!r}")
    out.print(dumps(rec), highlight=False, markup=False, soft_wrap=True)


def _ask(command: str, ids: list[str], url: str, board: str, actor: str, reason: str) -> None:
    async def go() -> list[str]:
        async with connect(url, board=board) as b:
            return [await steering.request(b, command, i, actor, reason) for i in ids]

    run(go())
    err.print(
        f"asked the controller to {command} {len(ids)} activation(s); "
        "`blackboard activation show ID` and `blackboard explain KEY` show the result",
        highlight=False,
        markup=False,
    )


@activation_app.command("retry")
def retry(
    activation_id: Annotated[str | None, typer.Argument(help="Activation id.")] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="With --failed: every dead letter of this role.")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Retry the dead letters (of --role).")
    ] = False,
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    redis: RedisOpt = None,
    board: BoardOpt = "demo",
) -> None:
    """Run a dead letter (or a scheduled retry) again now, as its next attempt."""
    url = need_url(redis)
    if activation_id is None and not failed:
        fail("give an activation id, or --failed [--role ROLE]", 2)
    ids = [activation_id] if activation_id else []
    if failed:

        async def letters() -> list[str]:
            async with connect(url, board=board) as b:
                return [r["id"] for r in await steering.dead_letters(b, role, 10_000)]

        ids += run(letters())
    _ask("retry", ids, url, board, _actor(actor), reason)


@activation_app.command("cancel")
def cancel(
    activation_id: Annotated[str, typer.Argument(help="Activation id.")],
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    redis: RedisOpt = None,
    board: BoardOpt = "demo",
) -> None:
    """Cancel a scheduled retry or a dead letter (a running activation ends by itself)."""
    _ask("cancel", [activation_id], need_url(redis), board, _actor(actor), reason)
