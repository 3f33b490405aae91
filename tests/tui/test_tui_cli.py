"""`blackboard tui` on the command line: its options, its errors, and that textual stays out
of `import blackboard` and the rest of the CLI."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from blackboard.cli import app
from blackboard.store.server import free_port

runner = CliRunner()


def test_help_lists_the_options() -> None:
    r = runner.invoke(app, ["tui", "--help"])
    assert r.exit_code == 0
    for option in ("--board", "--redis", "--user"):
        assert option in r.output


def test_no_url_and_unreachable_server_are_one_line_errors() -> None:
    r = runner.invoke(app, ["tui"], env={"BLACKBOARD_REDIS_URL": ""})
    assert r.exit_code == 2 and "no Redis URL" in r.stderr
    url = f"redis://127.0.0.1:{free_port()}/0"
    r = runner.invoke(app, ["tui", "--redis", url, "--board", "b"])
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "unreachable" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_textual_is_imported_only_by_the_tui() -> None:
    code = (
        "import sys, blackboard, blackboard.cli, blackboard.tui.model, blackboard.tui.pager, "
        "blackboard.tui.human_desk, blackboard.tui.escalations, blackboard.tui.log_window; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
