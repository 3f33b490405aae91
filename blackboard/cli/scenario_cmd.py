"""`blackboard run SCENARIO`: a scripted scenario run (edge layer; a thin command over
blackboard.scenario). Exit 0 when every invariant holds, 1 when one fails (or the system
cannot be brought up), 2 for a bad scenario file or option, 130 when interrupted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from blackboard.cli.context import app, err, fail, out
from blackboard.errors import BlackboardError
from blackboard.scenario.load import ScenarioPlan, load_scenario
from blackboard.scenario.model import ScenarioError
from blackboard.scenario.overrides import override
from blackboard.scenario.report import print_summary, write_report
from blackboard.scenario.runner import RunOptions, run_scenario


def _plan(
    scenario: Path,
    items: int | None,
    rate: float | None,
    burst: bool,
    agents: int | None,
    seed: int | None,
) -> ScenarioPlan:
    try:
        plan = load_scenario(scenario)
        return override(plan, items=items, rate=rate, burst=burst, agents=agents, seed=seed)
    except ScenarioError as exc:
        fail(str(exc), 2)


@app.command("run")
def run_command(
    scenario: Annotated[
        Path, typer.Argument(help="A scenario file (TOML), e.g. scenarios/support.toml.")
    ],
    report: Annotated[
        list[Path] | None,
        typer.Option(
            "--report", "-r", help="Write the report to this .json or .html file (repeatable)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    redis: Annotated[
        str | None,
        typer.Option("--redis", help="Run on this server instead of the scenario's (redis://...)."),
    ] = None,
    items: Annotated[
        int | None, typer.Option(min=1, help="Override the workload's item count.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Override the item rate (items/s).")
    ] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Write every item at once.")] = False,
    agents: Annotated[
        int | None, typer.Option(min=1, help="Processes per agent entry (overrides each count).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    keep_logs: Annotated[
        bool, typer.Option("--keep-logs", help="Keep the processes' logs even when the run passes.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only validate the scenario file and its policies, then exit; the agent "
            "modules it names are imported (to check their classes), nothing is started.",
        ),
    ] = False,
) -> None:
    """Run a scenario: start the system, drive the workload, inject the faults, check the
    invariants. Exit 0 when every invariant holds, 1 when one fails, 2 on bad input."""
    for path in report or []:
        if path.suffix.lower() not in (".json", ".html", ".htm"):
            fail(f"--report {path}: use a .json or .html file", 2)
    plan = _plan(scenario, items, rate, burst, agents, seed)
    if redis and any(f.kind == "server-restart" for f in plan.scenario.faults):
        fail(
            f"{scenario} restarts the server (a server-restart fault): it needs the "
            "embedded server, not --redis",
            2,
        )
    if check:
        for w in plan.warnings:
            err.print(f"warning: {w}", highlight=False, markup=False)
        out.print(f"{scenario}: valid", highlight=False, markup=False)
        return
    options = RunOptions(quiet=quiet, redis_url=redis, keep_logs=keep_logs, console=out)
    try:
        result = asyncio.run(run_scenario(plan, options))
    except KeyboardInterrupt:
        err.print("interrupted: every process and server was stopped", highlight=False)
        raise typer.Exit(130) from None
    except BlackboardError as exc:
        fail(str(exc))
    for path in report or []:
        try:
            write_report(result.report, path)
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror}")
    print_summary(result.report, out)
    raise typer.Exit(result.exit_code)
