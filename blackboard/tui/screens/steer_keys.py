"""The role steering keys the agents, agenda and activations screens share: p pause, d drain,
u resume, b open the breaker, B reset it, on the role of what is highlighted.

Pause, drain and opening a breaker stop work, so they ask first (`ReasonScreen`, which also
takes the reason for the record); resume and reset go at once. The request carries the
steering version the screen showed, so a screen that missed another operator's decision gets
the controller's conflict and changes nothing. The answer (or the conflict) is shown on the
screen's message line. Imports textual, the TUI's control read model, operator desk and the
reason screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen

from blackboard.control.read import RoleInfo
from blackboard.errors import BlackboardError

if TYPE_CHECKING:
    from blackboard.tui.app import BoardApp

__all__ = ["STEER_BINDINGS", "steer_role"]

STEER_BINDINGS: list[BindingType] = [
    Binding("p", "steer('pause')", "Pause role"),
    Binding("d", "steer('drain')", "Drain role"),
    Binding("u", "steer('resume')", "Resume role"),
    # the footer would drop the view keys; the help screen lists these
    Binding("b", "steer('breaker-open')", "Open role's breaker", show=False),
    Binding("B", "steer('breaker-reset')", "Reset role's breaker", show=False),
]

_ASK = {
    "pause": "Pause role {role}? Nothing new is granted to it; what it runs finishes.",
    "drain": (
        "Drain role {role}? Nothing new is granted to it; it is reported drained when "
        "nothing of it is in flight."
    ),
    "breaker-open": (
        "Open the breaker of {role} by hand? Nothing new is granted to it until someone "
        "resets the breaker."
    ),
}


def _question(command: str, role: RoleInfo) -> str:
    now = f"Now: {role.steering}, {role.in_flight} in flight, breaker {role.breaker}."
    return _ASK[command].format(role=role.role) + "\n" + now


def steer_role(
    screen: Screen[None],
    command: str,
    role: RoleInfo | None,
    say: Callable[[str, str], None],
    after: Callable[[], None],
) -> None:
    """Ask (for what stops work), then send `command` for `role` as the TUI's operator and
    show the answer with `say(text, kind)`; `after` starts a reload of the screen (one that
    cancels a reload already running, which may have read the state before the command)."""
    if role is None:
        say("no role is highlighted", "error")
        return
    desk = cast("BoardApp", screen.app).operator

    async def send(reason: str) -> None:
        say(f"asked the controller to {command} {role.role}; waiting for its answer…", "")
        try:
            outcome = await desk.steer_role(command, role.role, reason, expect=role.version)
        except (BlackboardError, ValueError) as exc:
            say(f"nothing was sent: {exc}", "error")
            return
        text = outcome.text
        if "conflict" in text:
            text += ". Press R to reload and decide again."
        say(text, "ok" if outcome.applied else "error")
        after()

    def confirmed(reason: str | None) -> None:
        if reason is not None:
            screen.run_worker(send(reason), group="steer", exit_on_error=False)

    if command in _ASK:
        from blackboard.tui.screens.reason_screen import ReasonScreen

        screen.app.push_screen(ReasonScreen(_question(command, role)), confirmed)
    else:
        confirmed("")
