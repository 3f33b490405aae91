"""`blackboard role pause|drain|resume|list` and `blackboard breaker open|reset`: operators
steer a live system (edge layer; thin commands over steering).

Each command appends a request to the board's command stream as the actor (default
``human:<login name>``) with a reason, then waits for the leading controller's answer (the
decision it records on ``sys/roles/<role>``) and prints it as one line: exit 0 when applied
(or nothing needed changing), 1 when refused (a conflict with `--expect`, an unknown role)
or when no controller answered within `--wait` seconds (the request stays on the stream and
is applied when a controller leads).
"""

from __future__ import annotations

import asyncio
import getpass
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from blackboard.board.client import Board
from blackboard.board.connection import connect
from blackboard.cli.context import (
    BoardOpt,
    JsonOpt,
    RedisOpt,
    app,
    cell,
    dumps,
    fail,
    need_url,
    out,
    run,
    terminal_text,
    writer_id,
)
from blackboard.control import steering
from blackboard.control.policy import check_role

role_app = typer.Typer(help="Pause, drain or resume a role (operators).", no_args_is_help=True)
breaker_app = typer.Typer(
    help="Open or reset a role's circuit breaker by hand.", no_args_is_help=True
)
app.add_typer(role_app, name="role")
app.add_typer(breaker_app, name="breaker")


def _role(value: str) -> str:
    try:
        return check_role(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


RoleArg = Annotated[str, typer.Argument(help="Role name.", callback=_role)]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept on the record).")]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who asks (default: human:<login name>).", callback=writer_id),
]
ExpectOpt = Annotated[
    int | None,
    typer.Option(
        "--expect", min=0, help="Refuse unless the role's steering record is at this version."
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait", min=0, max=3600, help="Seconds to wait for the controller's answer (0: none)."
    ),
]


def _steer(
    command: str, role: str, *, reason: str, actor: str | None, expect: int | None,
    wait: float, redis: str | None, board: str, until_drained: float = 0.0,
) -> None:  # fmt: skip
    url = need_url(redis)
    who = actor or f"human:{getpass.getuser()}"

    async def go() -> tuple[str, dict[str, Any] | None, bool | None]:
        async with connect(url, board=board) as b:
            cmd_id = await steering.request_role(b, command, role, who, reason, expect)
            if not wait:
                return cmd_id, None, None
            found = await steering.wait_outcome(b, steering.role_key(role), cmd_id, wait)
            drained: bool | None = None
            refused = found is None or str(found["reasons"][-1]).startswith("refused")
            if until_drained and not refused:
                deadline = time.monotonic() + until_drained
                while not (drained := await _drained(b, role)):
                    if time.monotonic() >= deadline:
                        break
                    await asyncio.sleep(0.2)
            return cmd_id, found, drained

    cmd_id, found, drained = run(go())
    if not wait:
        out.print(
            terminal_text(f"asked the controller to {command} {role} (command {cmd_id})"),
            highlight=False,
            markup=False,
        )
        return
    if found is None:
        fail(
            f"no controller answered {command} {role} within {wait:g}s; the request stays "
            "queued and is applied when a controller leads (`blackboard role list` shows it)"
        )
    result = str(found["reasons"][-1])
    if result.startswith("refused"):
        fail(f"{command} {role} {result}")
    line = f"{role}: {result} (as {who}" + (f": {reason})" if reason else ")")
    if drained is False:
        fail(f"{line}; still not drained after {until_drained:g}s")
    if drained and "drained" not in result:
        line += "; drained: nothing in flight"
    out.print(terminal_text(line), highlight=False, markup=False)


async def _drained(board: Board, role: str) -> bool:
    return bool((await steering.roles(board)).get(role, {}).get("drained"))


@role_app.command("drain")
def drain(
    role: RoleArg,
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    expect: ExpectOpt = None,
    wait: WaitOpt = 10.0,
    until_drained: Annotated[
        float,
        typer.Option(
            "--until-drained", min=0, max=86400,
            help="Then wait up to this many seconds until nothing of the role is in flight.",
        ),
    ] = 0.0,
    redis: RedisOpt = None,
    board: BoardOpt = "demo",
) -> None:  # fmt: skip
    """Like pause, and report when nothing of the role is in flight (`role list`)."""
    _steer("drain", role, reason=reason, actor=actor, expect=expect, wait=wait, redis=redis,
           board=board, until_drained=until_drained)  # fmt: skip


def _register(group: typer.Typer, name: str, command: str, doc: str) -> None:
    """One steering command with the common options (drain has one more: see above)."""

    def steer(
        role: RoleArg,
        reason: ReasonOpt = "",
        actor: ActorOpt = None,
        expect: ExpectOpt = None,
        wait: WaitOpt = 10.0,
        redis: RedisOpt = None,
        board: BoardOpt = "demo",
    ) -> None:
        _steer(command, role, reason=reason, actor=actor, expect=expect, wait=wait,
               redis=redis, board=board)  # fmt: skip

    steer.__doc__ = doc
    steer.__name__ = name
    group.command(name)(steer)


_register(role_app, "pause", "pause", "Grant the role nothing new; what it runs already finishes.")
_register(
    role_app, "resume", "resume", "Grant the role work again (its waiting candidates go first)."
)
_register(
    breaker_app, "open", "breaker-open",
    "Open the role's breaker by hand: it stays open (no trial) until reset.",
)  # fmt: skip
_register(
    breaker_app, "reset", "breaker-reset",
    "Close the role's breaker (opened by hand or by failures) and forget its failures.",
)  # fmt: skip


def mode_text(r: dict[str, Any]) -> str:
    """How a role is steered, in a few words."""
    if r["mode"] == "running":
        return "running"
    text = "drained" if r["mode"] == "draining" and r["drained"] else r["mode"]
    return f"{text} by {r['by']}" + (f": {r['reason']}" if r["reason"] else "")


@role_app.command("list")
def list_(redis: RedisOpt = None, board: BoardOpt = "demo", as_json: JsonOpt = False) -> None:
    """Every role: how operators steer it, what it has in flight, its breaker."""
    url = need_url(redis)

    async def go() -> dict[str, dict[str, Any]]:
        async with connect(url, board=board) as b:
            return await steering.roles(b)

    roles = run(go())
    if as_json:
        out.print(dumps(roles), highlight=False, markup=False, soft_wrap=True)
        return
    table = Table("role", "steering", "version", "in flight", "waiting", "breaker")
    for name, r in roles.items():
        breaker = r["breaker"] + (f" ({r['breaker_held']})" if r["breaker_held"] else "")
        table.add_row(
            *(cell(x) for x in (name, mode_text(r), r["version"], r["in_flight"], r["waiting"],
                                breaker))
        )  # fmt: skip
    out.print(table)
