"""The terminal UI: inspect and steer a live board (edge layer, `blackboard tui`).

Built with Textual, which is imported only by the modules that draw (app, screens, widgets),
so `import blackboard` and `import blackboard.tui.model` never import textual. The read
model (`model`; the control plane's is `blackboard.control.read`), the entry pager
(`pager`), the display functions (`display`) and the human decisions (`human`) are plain
Python the views call; they import the engine and nothing of textual. Nothing in the
engine imports this package.
"""

from __future__ import annotations

__all__ = ["run_tui"]


async def run_tui(url: str | None, board: str, user: str, *, follow_ms: int = 1000) -> int:
    """Connect to `board` and run the TUI until the user quits; returns the exit code.
    Raises BlackboardError when the board cannot be reached (before anything is drawn)."""
    from blackboard.board.connection import connect
    from blackboard.tui.app import BoardApp

    async with connect(url, board=board, writer=f"tui:{user}") as b:
        app = BoardApp(b, user=user, follow_ms=follow_ms)
        await app.run_async()
        return app.return_code or 0
