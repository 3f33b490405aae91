"""`blackboard tui`: the terminal UI over a live board (edge layer; imports the CLI context
and, only when the command runs, the TUI and textual)."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from blackboard.cli.context import BoardOpt, RedisOpt, app, err, need_url, run, writer_id


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "human"


@app.command()
def tui(
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            envvar="BLACKBOARD_USER",
            help="Who decides escalations: writes are recorded as human:<user>.",
            callback=writer_id,
        ),
    ] = None,
) -> None:
    """Inspect and steer a live board: entries, log, agents, agenda, escalations."""
    url = need_url(redis)
    try:
        from blackboard.tui import run_tui
    except ImportError as exc:
        err.print(
            f"error: the TUI needs textual ({exc}); install blackboard[tui]",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1) from None
    code = run(run_tui(url, board, user or _default_user()))
    if code:
        raise typer.Exit(code)
