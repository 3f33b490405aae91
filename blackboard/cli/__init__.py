"""The `blackboard` command line (edge layer): typer commands over the engine.

Each command module registers its commands on `app`; `context.run()` is the one place that
turns a BlackboardError into one clear line on stderr and exit code 1 (bad input: exit 2).
"""

from __future__ import annotations

from blackboard.cli import acl_cmd as acl_cmd
from blackboard.cli import activation_cmd as activation_cmd
from blackboard.cli import board_cmds as board_cmds
from blackboard.cli import compaction as compaction
from blackboard.cli import control as control
from blackboard.cli import deploy_cmd as deploy_cmd
from blackboard.cli import scenario_cmd as scenario_cmd
from blackboard.cli import steer_cmd as steer_cmd
from blackboard.cli import top_cmd as top_cmd
from blackboard.cli import tui_cmd as tui_cmd
from blackboard.cli.context import app

__all__ = ["app", "main"]


def main() -> None:
    app()
