"""Control commands: controller, agent run/list, policy apply/show/rollback, explain, agenda
(edge layer; thin commands over controller, runtime, policy_board, decisions)."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from blackboard.board.connection import connect
from blackboard.cli.context import (
    SERVE_WAIT,
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
    read_policy_file,
    run,
    terminal_text,
    writer_id,
)
from blackboard.cli.telemetry_opts import LogFormatOpt, MetricsPortOpt, start_telemetry
from blackboard.control import read
from blackboard.control.controller import Controller
from blackboard.control.decisions import controller_status
from blackboard.control.decisions import explain as explain_key
from blackboard.control.policy_board import POLICY_KEY, apply_policy, load_policy, rollback_policy
from blackboard.errors import AgentLoadError
from blackboard.runtime.agent import load_agent
from blackboard.runtime.agent_runtime import AgentRuntime
from blackboard.settings import Settings

agent_app = typer.Typer(help="Run and list agents.", no_args_is_help=True)
policy_app = typer.Typer(
    help="Apply, show and roll back the policy in force.", no_args_is_help=True
)
app.add_typer(agent_app, name="agent")
app.add_typer(policy_app, name="policy")

LogOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
UntilIdleOpt = Annotated[
    bool, typer.Option("--until-idle", help="Exit 0 once idle for --idle-after seconds.")
]
IdleAfterOpt = Annotated[
    float, typer.Option("--idle-after", min=0, help="Seconds with nothing read that count as idle.")
]


def _stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call inside the running loop). Also moves what
    start-up allocated out of the garbage collector's sight: a long-running process then
    pays for collecting only what it allocates while working (shorter pauses, see
    docs/DECISIONS.md)."""
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: stop now
            if main is not None:
                main.cancel()
            return
        stop.set()
        # a process stuck on a reply that never comes (a server killed mid-call, no reply
        # timeout set) still ends: cancelled once the shutdown grace is over
        if main is not None:
            loop.call_later(Settings().shutdown_grace + 5.0, main.cancel)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    return stop


@app.command()
def controller(
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    policy: Annotated[
        Path | None, typer.Option(help="Apply this policy file first (if it differs).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Controller id (default host:pid).", callback=writer_id)
    ] = None,
    until_idle: UntilIdleOpt = False,
    idle_after: IdleAfterOpt = 1.0,
    log_level: LogOpt = "info",
    log_format: LogFormatOpt = "text",
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run a controller: lead when holding the lease, stand by otherwise; SIGTERM stops it."""
    url = need_url(redis)
    source = read_policy_file(policy)[0] if policy is not None else None
    start_telemetry(
        "blackboard-controller", level=log_level, fmt=log_format, metrics_port=metrics_port,
        instance=name, controller=name, board=board,
    )  # fmt: skip

    async def go() -> None:
        stop = _stop_event()
        async with connect(url, board=board, writer=name or "controller", wait=SERVE_WAIT) as b:
            if source is not None and policy is not None:
                entry, written = await apply_policy(b, source, str(policy))
                state = "applied" if written else "already in force"
                err.print(
                    f"policy {policy} {state} (version {entry.version})",
                    highlight=False,
                    markup=False,
                )
            idle = idle_after if until_idle else None
            await Controller(b, name=name).run(stop, idle_exit=idle)

    run(go())


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r}: use KEY=VALUE")
    try:
        return key, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return key, raw


@agent_app.command("run")
def agent_run(
    spec: Annotated[str, typer.Argument(help="The agent: path/to/file.py:Class or module:Class.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Activations run at once (default: the class's).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Agent id (default role@host:pid).", callback=writer_id)
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE passed to the agent.")
    ] = None,
    until_idle: UntilIdleOpt = False,
    idle_after: IdleAfterOpt = 1.0,
    log_level: LogOpt = "info",
    log_format: LogFormatOpt = "text",
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run one agent process: claim its role's activations until SIGTERM, then finish or
    release in-flight work within the grace period and exit 0."""
    url = need_url(redis)
    try:
        cls = load_agent(spec)
    except AgentLoadError as exc:
        fail(str(exc), 2)
    options = dict(_parse_option(o) for o in option or [])
    start_telemetry(
        f"blackboard-agent-{cls.role}", level=log_level, fmt=log_format,
        metrics_port=metrics_port, instance=name, role=cls.role, agent=name, board=board,
    )  # fmt: skip

    async def go() -> None:
        stop = _stop_event()
        async with connect(url, board=board, wait=SERVE_WAIT) as b:
            runtime = AgentRuntime(cls(**options), b, name=name, concurrency=concurrency)
            await runtime.run(stop, idle_exit=idle_after if until_idle else None)

    run(go())


@agent_app.command("list")
def agent_list(board: BoardOpt = "demo", redis: RedisOpt = None, as_json: JsonOpt = False) -> None:
    """Agents that registered on the board, with their last heartbeat."""
    url = need_url(redis)

    async def go() -> dict[str, Any]:
        async with connect(url, board=board) as b:
            return {name: hb.record for name, hb in (await read.heartbeats(b)).items()}

    agents = run(go())
    if as_json:
        out.print(dumps(agents), highlight=False, markup=False)
        return
    table = Table(title=cell(f"{board}: agents"))
    for col in ("agent", "role", "in flight", "done", "failed", "lost", "last beat"):
        table.add_column(col)
    now = time.time() * 1000
    for agent_name, a in sorted(agents.items()):
        beat_ms = a.get("beat_ms", 0)
        beat = f"{(now - beat_ms) / 1000:.1f}s ago" if isinstance(beat_ms, int | float) else "?"
        table.add_row(
            cell(agent_name), cell(a.get("role", "")), cell(a.get("inflight", 0)),
            cell(a.get("done", 0)), cell(a.get("failed", 0)), cell(a.get("lost", 0)), beat,
        )  # fmt: skip
    out.print(table)


@policy_app.command("apply")
def policy_apply(
    file: Annotated[Path, typer.Argument(help="A TOML policy document.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
) -> None:
    """Validate a policy and put it in force (an invalid one is refused: exit 2)."""
    url = need_url(redis)
    source = read_policy_file(file)[0]

    async def go() -> tuple[int, bool]:
        async with connect(url, board=board, writer="cli") as b:
            entry, written = await apply_policy(b, source, str(file))
            return entry.version, written

    version, written = run(go())
    what = "in force" if written else "already in force"
    out.print(
        f"policy {file} {what} as version {version} of {POLICY_KEY}",
        highlight=False,
        markup=False,
    )


@policy_app.command("show")
def policy_show(board: BoardOpt = "demo", redis: RedisOpt = None, as_json: JsonOpt = False) -> None:
    """Print the policy in force."""
    url = need_url(redis)

    async def go() -> Any:
        async with connect(url, board=board) as b:
            return await load_policy(b)

    loaded = run(go())
    if loaded is None:
        fail(f"no policy on board {board!r}")
    policy, entry = loaded
    if as_json:
        doc = {"version": entry.version, "file": entry.value.get("file")}
        doc["policy"] = policy.model_dump(mode="json", by_alias=True)
        out.print(dumps(doc), highlight=False, markup=False)
        return
    file = terminal_text(entry.value.get("file"))
    out.print(f"# version {entry.version} of {POLICY_KEY}, from {file}", markup=False)
    out.print(terminal_text(entry.value["source"], lines=True), highlight=False, markup=False)


@policy_app.command("rollback")
def policy_rollback(board: BoardOpt = "demo", redis: RedisOpt = None) -> None:
    """Put the previous valid policy back in force (as a new version)."""
    url = need_url(redis)

    async def go() -> int:
        async with connect(url, board=board, writer="cli") as b:
            return (await rollback_policy(b)).version

    version = run(go())
    out.print(f"rolled back: version {version} of {POLICY_KEY} is in force", highlight=False)


@app.command()
def explain(
    key: Annotated[str, typer.Argument(help="Entry key.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many decisions.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Why each role was or was not activated on an entry, newest first."""
    url = need_url(redis)

    async def go() -> list[dict[str, Any]]:
        async with connect(url, board=board) as b:
            return await explain_key(b, key, limit=limit)

    found = run(go())
    if as_json:
        for d in found:
            out.print(dumps(d), highlight=False, markup=False)
        return
    if not found:
        out.print(f"no decisions recorded about {key!r}", highlight=False, markup=False)
        return
    for d in found:
        state = ""
        act = d.get("activation")
        if act:
            state = f" -> {act['state']}" + (f" by {act['agent']}" if act.get("agent") else "")
            if act.get("error"):
                state += f" ({act['error']})"
        out.print(
            f"[bold]{cell(d['decision'])}[/] {cell(d['role'] or '-')} on {cell(d['key'])} "
            f"v{cell(d['version'])} (rev {cell(d['revision'])}, rule {cell(d['rule'] or '-')})"
            f"{cell(state)}",
            highlight=False,
        )
        for reason in d["reasons"]:
            out.print(f"    {terminal_text(reason)}", highlight=False, markup=False)


@app.command()
def agenda(board: BoardOpt = "demo", redis: RedisOpt = None, as_json: JsonOpt = False) -> None:
    """The leading controller's last status: per role pending, waiting and breaker state."""
    url = need_url(redis)

    async def go() -> dict[str, Any] | None:
        async with connect(url, board=board) as b:
            return await controller_status(b)

    status = run(go())
    if status is None:
        fail("no controller has led on this board")
    if as_json:
        out.print(dumps(status), highlight=False, markup=False)
        return
    age = (time.time() * 1000 - status["time_ms"]) / 1000
    out.print(
        terminal_text(
            f"leader {status['leader']} (epoch {status['epoch']}, {age:.1f}s ago), policy "
            f"{status['policy'] or '-'}, revision {status['revision']}"
        ),
        highlight=False,
        markup=False,
    )
    table = Table()
    for col in ("role", "pending", "waiting", "breaker"):
        table.add_column(col)
    for role, r in status["roles"].items():
        table.add_row(cell(role), cell(r["pending"]), cell(r["waiting"]), cell(r["breaker"]))
    out.print(table)
