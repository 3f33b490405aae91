"""Compaction commands: compactor, export, import, propose, proposals, resolve (edge layer;
thin commands over compactor, snapshot, restore, proposals and reconcile)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from blackboard.board.connection import connect
from blackboard.board.restore import Restored, restore
from blackboard.board.retention import Retention
from blackboard.board.snapshot import dumps as dump_snapshot
from blackboard.board.snapshot import loads as load_snapshot
from blackboard.board.snapshot import take_snapshot
from blackboard.cli.context import (
    SERVE_WAIT,
    BoardOpt,
    JsonOpt,
    RedisOpt,
    app,
    dumps,
    err,
    need_url,
    out,
    parse_json,
    run,
    terminal_text,
    writer_id,
)
from blackboard.cli.telemetry_opts import LogFormatOpt, MetricsPortOpt, start_telemetry
from blackboard.compaction.compactor import Compactor, CompactorStats
from blackboard.compaction.merge import MergeRule, rules_from_document
from blackboard.compaction.merge_functions import parse_assignment
from blackboard.compaction.reconcile import resolve_escalation
from blackboard.errors import MergePolicyError

Seconds = Annotated[float, typer.Option(min=0, help="Seconds kept; 0 = no age limit.")]


def _rules_from_file(path: Path) -> tuple[MergeRule, ...]:
    try:
        document = tomllib.loads(path.read_bytes().decode())
    except UnicodeDecodeError:
        err.print(f"error: {path} is not UTF-8 text", highlight=False, markup=False)
        raise typer.Exit(2) from None
    except OSError as exc:
        err.print(f"error: cannot read {path}: {exc.strerror}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    except tomllib.TOMLDecodeError as exc:
        err.print(f"error: {path} is not TOML: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    try:
        return rules_from_document(document)
    except MergePolicyError as exc:
        err.print(f"error: {path}: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None


def _say(message: str) -> None:
    # plain writes: a busy compactor reports many lines, and rich costs ~10x per line
    out.file.write(f"{time.strftime('%H:%M:%S')} {message}\n")
    out.file.flush()


@app.command()
def compactor(
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="TOML policy whose [[merge]] tables to use (default: sys/policy)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Compactor id (default host:pid).")] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit when a round finds nothing to do.")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.001, help="Seconds between rounds.")] = 0.5,
    lease_ttl: Annotated[float, typer.Option(min=0.05, help="Lease time to live, s.")] = 10.0,
    log_max_events: Annotated[
        int, typer.Option(min=0, help="Log events kept; 0 = no count limit.")
    ] = 100_000,
    log_max_age: Seconds = 3600.0,
    history_max_versions: Annotated[
        int, typer.Option(min=0, help="Versions kept per entry; 0 = only the age limit.")
    ] = 0,
    history_max_age: Seconds = 3600.0,
    activation_max_age: Seconds = 3600.0,
    retention_every: Annotated[
        float, typer.Option(min=0.001, help="Seconds between retention passes.")
    ] = 5.0,
    no_retention: Annotated[
        bool, typer.Option("--no-retention", help="Only reconcile; trim nothing.")
    ] = False,
    merge_function: Annotated[
        list[str] | None,
        typer.Option(
            "--merge-function",
            metavar="NAME=MODULE:FUNCTION",
            help="Allow a custom merge function under NAME (repeatable; with "
            "BLACKBOARD_MERGE_FUNCTIONS and entry points 'blackboard.merge_functions'). "
            "A policy can only name functions on this list.",
        ),
    ] = None,
    log_format: LogFormatOpt = "text",
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Reconcile divergent entries and trim history to the retention window.

    One acts per board; more wait as standbys. Stops cleanly on SIGTERM or Ctrl-C."""
    url = need_url(redis)
    allowed: dict[str, str] = {}
    for assignment in merge_function or []:
        try:
            fn_name, target = parse_assignment(assignment)
        except MergePolicyError as exc:
            err.print(f"error: --merge-function: {exc}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        allowed[fn_name] = target
    rules = _rules_from_file(policy) if policy is not None else None
    start_telemetry(
        "blackboard-compactor", level="info", fmt=log_format, metrics_port=metrics_port,
        instance=name, compactor=name, board=board,
    )  # fmt: skip
    say = _say if log_format == "text" else logging.getLogger("blackboard.compactor").info
    if no_retention:
        retention = Retention(
            log_max_events=None,
            log_max_age=None,
            history_max_versions=None,
            history_max_age=None,
            activation_max_age=None,
        )
    else:
        retention = Retention(
            log_max_events=log_max_events or None,
            log_max_age=log_max_age or None,
            history_max_versions=history_max_versions or None,
            history_max_age=history_max_age or None,
            activation_max_age=activation_max_age or None,
            every=retention_every,
        )

    async def go() -> CompactorStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with connect(url, board=board, wait=SERVE_WAIT) as b:
            c = Compactor(
                b,
                rules=rules,
                retention=retention,
                name=name,
                interval=interval,
                lease_ttl=lease_ttl,
                report=say,
                merge_functions={**b.settings.merge_functions, **allowed},
            )
            where = (
                f"{len(rules)} merge rule(s) from {policy}"
                if rules is not None
                else ("merge rules from sys/policy")
            )
            say(f"compactor {c.name} on board {board}: {where}")
            functions = c.merge_functions.names()
            if functions:
                say(f"custom merge functions allowed: {', '.join(functions)}")
            return await c.run(until_idle=until_idle, stop=stop)

    s = run(go())
    say(
        f"stopped: {s.merged} merged, {s.escalated} escalated, {s.resolved} decided by a "
        f"human, {s.log_trimmed} log events and {s.history_trimmed} versions trimmed"
    )


@app.command("export")
def export_board(
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="json or msgpack.")] = "json",
    history: Annotated[
        bool, typer.Option("--history", help="Every retained version, not only the current.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write a snapshot of the board as of its current revision."""
    url = need_url(redis)
    if fmt not in ("json", "msgpack"):
        raise typer.BadParameter("use --format json or --format msgpack")

    async def go() -> dict[str, Any]:
        async with connect(url, board=board) as b:
            return await take_snapshot(b, history=history)

    doc = run(go())
    data = dump_snapshot(doc, fmt)
    if output is not None:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    err.print(
        f"exported {len(doc['entries'])} entries and {len(doc['proposals'])} proposals of "
        f"board {board} at revision {doc['revision']}",
        highlight=False,
    )


@app.command("import")
def import_board(
    source: Annotated[str, typer.Argument(help="Snapshot file (JSON or msgpack); '-' = stdin.")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
) -> None:
    """Restore a snapshot into an empty board, keeping versions and revisions."""
    url = need_url(redis)
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        err.print(f"error: cannot read {source}: {exc.strerror}", highlight=False, markup=False)
        raise typer.Exit(2) from None

    async def go() -> Restored:
        doc = load_snapshot(data)
        async with connect(url, board=board, writer="import") as b:
            return await restore(b, doc)

    r = run(go())
    out.print(
        f"imported {r.entries} entries ({r.versions} versions) and {r.proposals} proposals "
        f"into board {board} at revision {r.revision}",
        highlight=False,
    )


@app.command()
def propose(
    key: Annotated[str, typer.Argument(help="Entry key.")],
    value: Annotated[str, typer.Argument(help="JSON value ('-' reads stdin).")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    confidence: Annotated[float | None, typer.Option(min=0, max=1, help="0..1.")] = None,
    writer: Annotated[
        str, typer.Option("--writer", help="Proposer id.", callback=writer_id)
    ] = "cli",
) -> None:
    """Propose a value for an entry (replaces this proposer's earlier proposal)."""
    url = need_url(redis)
    data = parse_json(value)

    async def go() -> int:
        async with connect(url, board=board, writer=writer) as b:
            return (await b.propose(key, data, confidence)).revision

    out.print(f"{key}: proposal by {writer} at revision {run(go())}", highlight=False, markup=False)


@app.command()
def proposals(
    key: Annotated[
        str | None, typer.Argument(help="Entry key; none lists the divergent entries.")
    ] = None,
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open proposals for an entry, or the entries whose proposals disagree."""
    url = need_url(redis)

    async def go() -> list[Any]:
        async with connect(url, board=board) as b:
            if key is None:
                return list(await b.divergent())
            return [
                {
                    "proposer": p.proposer,
                    "value": p.value,
                    "confidence": p.confidence,
                    "revision": p.revision,
                }
                for p in await b.proposals(key)
            ]

    for item in run(go()):
        if as_json or not isinstance(item, str):
            out.print(dumps(item), highlight=False, markup=False)
        else:
            out.print(terminal_text(item), highlight=False, markup=False)


@app.command()
def resolve(
    key: Annotated[str, typer.Argument(help="The escalated entry's key.")],
    value: Annotated[str, typer.Argument(help="The decided value, JSON ('-' reads stdin).")],
    board: BoardOpt = "demo",
    redis: RedisOpt = None,
    writer: Annotated[
        str, typer.Option("--writer", help="Who decides.", callback=writer_id)
    ] = "human:cli",
) -> None:
    """Decide a merge escalation; the compactor writes the value over its proposals."""
    url = need_url(redis)
    data = parse_json(value)

    async def go() -> None:
        async with connect(url, board=board, writer=writer) as b:
            await resolve_escalation(b, key, data)

    run(go())  # no open escalation (EscalationNotFoundError): one line on stderr, exit 1
    out.print(
        f"{key}: decided by {writer}; the compactor applies it next round",
        highlight=False,
        markup=False,
    )
