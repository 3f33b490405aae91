"""Text snapshots of TUI screens: the screen as plain text, with what changes from run to
run (ages, clock times, board names) masked, compared with a committed file under
``tests/tui/__snapshots__``. Set ``BLACKBOARD_UPDATE_SNAPSHOTS=1`` to rewrite the files."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from rich.console import Console
from textual.app import App

HERE = Path(__file__).parent / "__snapshots__"
# an age with the blanks around it (its column has a fixed width, the digits do not)
_AGE = re.compile(r" *(?<![\w./:@-])\d+(?:ms|s|m|h|d)(?![\w]) *")
_CLOCK = re.compile(r"\b\d\d:\d\d:\d\d\b")


def screen_text(app: App[object]) -> str:
    """What the terminal shows now, as text (no colours)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system=None,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


def masked(text: str, *names: str) -> str:
    """`text` with ages, clock times and the given names replaced, keeping column widths."""
    text = _AGE.sub(lambda m: "·" * len(m.group(0)), text)
    text = _CLOCK.sub("HH:MM:SS", text)
    for i, name in enumerate(names):
        text = text.replace(name, f"<{i}>".ljust(len(name), "_"))
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def assert_snapshot(app: App[object], name: str, *names: str) -> None:
    """Compare the screen with ``__snapshots__/<name>.txt`` (rewrite it when updating)."""
    got = masked(screen_text(app), *names)
    path = HERE / f"{name}.txt"
    if os.environ.get("BLACKBOARD_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        HERE.mkdir(exist_ok=True)
        path.write_text(got)
        if os.environ.get("BLACKBOARD_UPDATE_SNAPSHOTS") != "1":
            raise AssertionError(f"snapshot {path} was missing and has been written; run again")
        return
    want = path.read_text()
    hint = "BLACKBOARD_UPDATE_SNAPSHOTS=1 rewrites it"
    assert got == want, f"screen differs from {path} ({hint}):\n{got}"
