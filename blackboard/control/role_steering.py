"""Operators' steering of roles, applied by the leading controller: pause, drain, resume, and
a breaker opened or reset by hand (control layer; imports acl, agenda, board, decisions,
entry, errors, grant_batch, ops, policy).

An operator appends a command to the board's command stream (`steering.request_role`); the
leader reads it at its status tick and calls `RoleSteering.command`. The state it changes
lives on the board, written in the same fenced batch that moves the command cursor: the
role's record in the controller state hash (``steer:<role>``) and its breaker
(``breaker:<role>``), so a new leader loads both (`load`) and carries on. A paused or
draining role gets nothing new from the agenda (`Agenda.paused`; its candidates wait with the
reason "paused by <actor>"), while what it runs already finishes; a draining role is reported
drained, once, when nothing of it is in flight. Every command gets an ``operator`` decision
on the role's record key ``sys/roles/<role>`` (``blackboard explain sys/roles/<role>``) with
the command id, so the one who asked can read the outcome, and the leader writes the role's
record to that entry as well, as the actor, fenced by its lease: the change log, the
history and the TUI show who steered what, when and why. A command may carry the record
version its sender saw (`expect`): any other version refuses it, so a stale screen never
undoes someone else's newer decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from blackboard.board.client import Board
from blackboard.board.ops import Fence
from blackboard.control.agenda import Agenda
from blackboard.control.decisions import decision
from blackboard.control.grant_batch import GrantBatch
from blackboard.control.guards import BreakerState
from blackboard.control.policy import Policy, roles_of
from blackboard.errors import BlackboardError, IdempotencyKeyReusedError, LeaseLostError

__all__ = [
    "ROLE_COMMANDS",
    "ROLE_KEY_PREFIX",
    "RoleState",
    "RoleSteering",
    "command_time_ms",
    "role_key",
]

log = logging.getLogger("blackboard.controller")

ROLE_COMMANDS = ("pause", "drain", "resume", "breaker-open", "breaker-reset")
ROLE_KEY_PREFIX = "sys/roles/"


def role_key(role: str) -> str:
    """The entry that records how operators steered `role` (and its decisions' key)."""
    return ROLE_KEY_PREFIX + role


def command_time_ms(command_id: str) -> int:
    """When a command was appended: the milliseconds of its stream id."""
    try:
        return int(command_id.split("-", 1)[0])
    except ValueError:
        return 0


@dataclass(slots=True)
class RoleState:
    """How operators steer one role. `mode` is running, paused or draining; `by`, `reason`
    and `time_ms` say who set it, why and when; `version` counts the commands that changed
    the record (a command's `expect` is checked against it); `drained_ms` is when a draining
    role first had nothing in flight (0: not yet)."""

    role: str
    mode: str = "running"
    by: str = ""
    reason: str = ""
    time_ms: int = 0
    version: int = 0
    drained_ms: int = 0
    command: str = ""

    @classmethod
    def from_dict(cls, role: str, data: Mapping[str, Any]) -> RoleState:
        return cls(
            role=role,
            mode=str(data.get("mode", "running")),
            by=str(data.get("by", "")),
            reason=str(data.get("reason", "")),
            time_ms=int(data.get("time_ms", 0) or 0),
            version=int(data.get("version", 0) or 0),
            drained_ms=int(data.get("drained_ms", 0) or 0),
            command=str(data.get("command", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def held(self) -> str:
        """Why the role's candidates wait ("" when running)."""
        if self.mode == "running":
            return ""
        word = "paused" if self.mode == "paused" else "draining"
        return f"{word} by {self.by}" + (f": {self.reason}" if self.reason else "")


class RoleSteering:
    """The leader's steering records, one per role an operator ever steered."""

    def __init__(self, board: Board, lease_key: str, name: str) -> None:
        self.board = board
        self.lease_key = lease_key
        self.name = name  # the controller's: the writer of what no operator wrote
        self.roles: dict[str, RoleState] = {}

    def load(self, fields: Mapping[str, Any], agenda: Agenda) -> None:
        """Take over the records of an earlier leader (``steer:<role>`` -> dict) and hold
        the roles that are not running on `agenda`."""
        self.roles = {
            role: RoleState.from_dict(role, data)
            for role, data in fields.items()
            if isinstance(data, Mapping)
        }
        agenda.paused = {r: s.held for r, s in self.roles.items() if s.mode != "running"}

    # -- commands ----------------------------------------------------------------------------

    async def command(
        self, batch: GrantBatch, cmd: Mapping[str, str], agenda: Agenda, policy: Policy,
        retries: Mapping[str, float], token: str, now: float,
    ) -> str:  # fmt: skip
        """Apply one role command (fields: c command, r role, w actor, why reason, e the
        expected record version, id the stream id); returns what happened."""
        what, role = cmd.get("c", ""), cmd.get("r", "")
        actor, reason = cmd.get("w", "?"), cmd.get("why", "")
        cmd_id = cmd.get("id", "")
        when = command_time_ms(cmd_id) or int(now * 1000)
        said = f"{what} {role} by {actor}" + (f": {reason}" if reason else "")
        state = self.roles.get(role) or RoleState(role)
        result = self._check(what, role, cmd.get("e", ""), state, policy)
        changed = False
        if not result:
            result, changed = self._apply(what, state, agenda, actor, reason, when)
        if changed:
            state.version += 1
            state.command = what
            self.roles[role] = state
            batch.state(f"steer:{role}", state.to_dict())
            if what.startswith("breaker-"):
                batch.state(f"breaker:{role}", agenda.breaker(role).dump())
            idle = in_flight(agenda, retries).get(role, 0) == 0
            if state.mode == "draining" and not state.drained_ms and idle:
                state.drained_ms = when
                result += "; drained: nothing in flight"
                batch.state(f"steer:{role}", state.to_dict())
        log.info("%s -> %s", said, result)
        self._decide(batch, state, what, [said, result], cmd_id, when)
        if changed:
            record = {**self.record(state, agenda), "result": result, "command_id": cmd_id}
            await self._publish(role, record, actor, token, f"ctl-cmd:{cmd_id}")
        return result

    def _check(self, what: str, role: str, expect: str, state: RoleState, policy: Policy) -> str:
        """Why the command is refused ("" when it is not)."""
        if what not in ROLE_COMMANDS:
            return f"refused: unknown command {what!r}"
        known = roles_of(policy)
        if role not in known:
            listed = ", ".join(known) or "none"
            return f"refused: no role {role!r} in the policy in force (roles: {listed})"
        if expect:
            try:
                expected = int(expect)
            except ValueError:
                return f"refused: expected version {expect!r} is not a number"
            if expected != state.version:
                return (
                    f"refused: conflict: {role} is at steering version {state.version} "
                    f"({describe(state)}), the request expected version {expected}; "
                    "nothing changed"
                )
        return ""

    def _apply(
        self, what: str, state: RoleState, agenda: Agenda, actor: str, reason: str, when: int
    ) -> tuple[str, bool]:
        role = state.role
        if what in ("pause", "drain"):
            mode = "paused" if what == "pause" else "draining"
            if state.mode == mode:
                return f"already {mode} by {state.by}", False
            was = state.mode
            state.mode, state.by, state.reason, state.time_ms = mode, actor, reason, when
            state.drained_ms = 0
            agenda.paused[role] = state.held
            return f"{mode} (was {was}); what runs already finishes", True
        if what == "resume":
            if state.mode == "running":
                return "already running", False
            was = state.mode
            state.mode, state.by, state.reason, state.time_ms = "running", actor, reason, when
            state.drained_ms = 0
            agenda.paused.pop(role, None)
            agenda.held.pop(role, None)
            return f"resumed (was {was})", True
        breaker = agenda.breaker(role)
        if what == "breaker-open":
            if breaker.held:
                return f"breaker already {breaker.held}", False
            held = f"opened by {actor}" + (f": {reason}" if reason else "")
            breaker.hold(held, when / 1000)
            return "breaker open until reset by hand", True
        if breaker.state is BreakerState.CLOSED and not breaker.held:
            return "breaker already closed", False
        was = "held open" if breaker.held else breaker.state.value
        breaker.reset()
        return f"breaker closed (was {was})", True

    def _decide(
        self, batch: GrantBatch, state: RoleState, what: str, reasons: list[str], cmd_id: str,
        when: int, kind: str = "operator",
    ) -> None:  # fmt: skip
        key = role_key(state.role)
        blob = decision(
            kind, key=key, version=state.version, revision=0, role=state.role, rule=what,
            reasons=reasons, time_ms=when, command=cmd_id,
        )  # fmt: skip
        batch.decide(key, blob)

    async def after_commands(
        self, batch: GrantBatch, agenda: Agenda, retries: Mapping[str, float], token: str,
        now: float,
    ) -> None:  # fmt: skip
        """Report a draining role drained, once, when nothing of it is in flight (a
        decision, its record and its entry)."""
        draining = [s for s in self.roles.values() if s.mode == "draining" and not s.drained_ms]
        if not draining:
            return
        counts = in_flight(agenda, retries)
        for state in draining:
            if counts.get(state.role, 0):
                continue
            state.drained_ms = int(now * 1000)
            batch.state(f"steer:{state.role}", state.to_dict())
            why = ["drained: nothing in flight"]
            self._decide(batch, state, "drain", why, "", state.drained_ms, kind="drained")
            log.info("role %s drained: nothing in flight", state.role)
            record = {**self.record(state, agenda), "result": "drained: nothing in flight"}
            key = f"ctl-drained:{state.role}:{state.version}"
            await self._publish(state.role, record, self.name, token, key)

    # -- the record on the board ---------------------------------------------------------

    def record(self, state: RoleState, agenda: Agenda) -> dict[str, Any]:
        """The role's record as the entry ``sys/roles/<role>`` holds it."""
        breaker = agenda.breakers.get(state.role)
        return {
            **state.to_dict(),
            "drained": bool(state.drained_ms),
            "breaker_held": breaker.held if breaker is not None else "",
        }

    async def _publish(
        self, role: str, record: dict[str, Any], writer: str, token: str, idempotency_key: str
    ) -> None:
        """Write the role's record as `writer`, fenced by the lease. A leader that takes
        over and applies the same command again finds its idempotency record: once."""
        view = self.board.bind(writer=writer, fence=Fence("eq", self.lease_key, token))
        try:
            await view.put(role_key(role), record, idempotency_key=idempotency_key)
        except LeaseLostError:
            raise
        except IdempotencyKeyReusedError:
            pass  # written by the leader before this one, with the state it saw then
        except BlackboardError as exc:  # the record is for people; the state is safe
            log.warning("could not write %s: %s", role_key(role), exc)

    # -- status ------------------------------------------------------------------------------

    def status(self, agenda: Agenda, retries: Mapping[str, float]) -> dict[str, Any]:
        """Per steered role: its record with what it has in flight and retrying."""
        if not self.roles:
            return {}
        counts = in_flight(agenda, retries)
        waiting_retry: dict[str, int] = {}
        for act_id in retries:
            act = agenda.open.get(act_id)
            if act is not None:
                waiting_retry[act.role] = waiting_retry.get(act.role, 0) + 1
        return {
            role: {
                **self.record(s, agenda),
                "in_flight": counts.get(role, 0),
                "retrying": waiting_retry.get(role, 0),
            }
            for role, s in sorted(self.roles.items())
        }


def in_flight(agenda: Agenda, retries: Mapping[str, float]) -> dict[str, int]:
    """Per role: activations granted and not finished, less those waiting for a retry."""
    out: dict[str, int] = {}
    for act_id, act in agenda.open.items():
        if act_id not in retries:
            out[act.role] = out.get(act.role, 0) + 1
    return out


def describe(state: RoleState) -> str:
    """One phrase: how the role is steered."""
    if state.mode == "running":
        return "running" + (f", resumed by {state.by}" if state.by else "")
    if state.mode == "draining" and state.drained_ms:
        return f"drained ({state.held})"
    return state.held
