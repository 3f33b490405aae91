"""`blackboard top`: a live view of a running system, refreshed from its board (edge layer;
a thin command over system_status).

Per role (80 columns): agents, activations running (busy), on the queue (queued: not yet
claimed, or claimed and not acknowledged), open and waiting at the controller, done, failed
and lost per second, the breaker; above it the controller's leader, epoch, policy and lag.
``--once`` prints one view, ``--json`` one snapshot with every count and the rates.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from blackboard.board.connection import connect
from blackboard.cli.context import BoardOpt, JsonOpt, RedisOpt, app, cell, dumps, need_url, out, run
from blackboard.control.system_status import SystemStatus, rates, system_status

__all__ = ["render", "top"]

_BREAKER_STYLE = {"closed": "green", "half-open": "yellow", "open": "bold red"}


def render(snap: SystemStatus, per_second: dict[str, dict[str, float]] | None) -> Group:
    """The view of one snapshot (rates: None before the second one)."""
    if snap.leader is None:
        head = "no controller has led on this board"
    else:
        age = f"{snap.status_age_s:.1f}s ago" if snap.status_age_s is not None else "?"
        head = (
            f"leader {cell(snap.leader)} (epoch {snap.epoch}), policy {cell(snap.policy or '-')}"
            f", controller lag [bold]{snap.lag}[/] events (status {age})"
        )
    title = Text.from_markup(
        f"[bold]{cell(snap.board)}[/] at revision {snap.revision}: {head}", overflow="fold"
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in (
        "role", "agents", "busy", "queued", "open", "waiting", "done/s", "fail/s", "lost/s",
        "breaker",
    ):  # fmt: skip
        right = col not in ("role", "breaker")
        table.add_column(col, justify="right" if right else "left", no_wrap=not right)
    for role, r in sorted(snap.roles.items()):
        rate = (per_second or {}).get(role)
        shown = [f"{rate[k]:.1f}" if rate else "-" for k in ("done", "failed", "lost")]
        style = _BREAKER_STYLE.get(r.breaker, "")
        table.add_row(
            cell(role), str(r.agents), str(r.inflight), str(r.queued + r.claimed), str(r.open),
            str(r.waiting), *shown,
            f"[{style}]{cell(r.breaker)}[/]" if style else cell(r.breaker),
        )  # fmt: skip
    return Group(title, table)


@app.command()
def top(
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    interval: Annotated[
        float, typer.Option(min=0.05, max=3600, help="Seconds between refreshes.")
    ] = 1.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one view (rates over one interval) and exit.")
    ] = False,
    count: Annotated[
        int, typer.Option(min=0, help="Stop after this many refreshes (0: until Ctrl-C).")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """A live view of a running system: per role rates, queues, in flight and breakers, and
    the controller's lag, refreshed from the board (Ctrl-C ends it)."""
    url = need_url(redis)

    async def snapshot() -> tuple[SystemStatus, dict[str, dict[str, float]]]:
        async with connect(url, board=board) as b:
            first = await system_status(b)
            await asyncio.sleep(interval)
            second = await system_status(b)
            return second, rates(first, second)

    if once or as_json:
        snap, per_second = run(snapshot())
        if as_json:
            doc: dict[str, Any] = snap.as_dict()
            doc["rates"] = per_second
            out.print(dumps(doc), highlight=False, markup=False)
        else:
            out.print(render(snap, per_second))
        return

    async def live() -> None:
        async with connect(url, board=board) as b:
            prev = await system_status(b)
            with Live(render(prev, None), console=out, auto_refresh=False) as view:
                shown = 0
                while count == 0 or shown < count:
                    await asyncio.sleep(interval)
                    cur = await system_status(b)
                    view.update(render(cur, rates(prev, cur)), refresh=True)
                    prev, shown = cur, shown + 1

    run(live())
