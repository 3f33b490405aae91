"""Scripted scenario runs: start a whole system (server, controllers, compactors, agents as
real processes), drive a workload, inject faults, check invariants from the board, report.

The subpackage sits at the edge with the CLI and TUI: it imports the controller, compactor,
runtime and board layers, and nothing imports it but the CLI (``blackboard run``).

    plan = load_scenario("scenarios/support.toml")
    result = await run_scenario(plan, RunOptions(quiet=True))
    result.exit_code, result.report["invariants"]
"""

from blackboard.scenario.load import ScenarioPlan, load_scenario
from blackboard.scenario.model import ScenarioError, parse_scenario
from blackboard.scenario.runner import RunOptions, RunResult, run_scenario

__all__ = [
    "RunOptions",
    "RunResult",
    "ScenarioError",
    "ScenarioPlan",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
]
