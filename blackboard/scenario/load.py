"""Loading a scenario file: validate it (scenario.model), read the policies and load the
agent classes it names (paths relative to the scenario file), and check that its parts fit
together (boards, roles and faults that refer to each other). Scenario layer; imports
policy, agent, board.names, errors and scenario.model/lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blackboard.board.names import check_board
from blackboard.control.policy import Policy, check_role, decode_policy, parse_policy
from blackboard.control.tomllines import NotUtf8Error, decode_utf8, locate
from blackboard.errors import AgentLoadError, InvalidKeyError, PolicyError
from blackboard.runtime.agent import load_agent
from blackboard.scenario.model import AgentSpec, BoardSpec, Scenario, ScenarioError, parse_scenario

__all__ = ["AgentPlan", "BoardPlan", "ScenarioPlan", "load_scenario"]


@dataclass(slots=True)
class AgentPlan:
    spec: AgentSpec
    path: str
    """the agent as given to `blackboard agent run` (files made absolute)"""
    role: str


@dataclass(slots=True)
class BoardPlan:
    spec: BoardSpec
    policy_path: Path
    policy_source: str
    policy: Policy
    agents: list[AgentPlan] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def roles(self) -> set[str]:
        return {a.role for a in self.agents}


@dataclass(slots=True)
class ScenarioPlan:
    """A validated scenario with its files resolved and read."""

    scenario: Scenario
    path: Path
    boards: list[BoardPlan]
    warnings: list[str] = field(default_factory=list)

    def board(self, name: str | None) -> BoardPlan:
        if name is None:
            return self.boards[0]
        return next(b for b in self.boards if b.name == name)

    @property
    def item_boards(self) -> list[str]:
        return list(self.scenario.workload.boards) or [self.boards[0].name]


def _agent_path(spec: str, base: Path) -> str:
    path, sep, cls = spec.rpartition(":")
    if sep and (path.endswith(".py") or "/" in path) and not Path(path).is_absolute():
        return f"{(base / path).resolve()}:{cls}"
    return spec


def load_scenario(path: str | Path) -> ScenarioPlan:
    """Read and validate a scenario file and everything it names (policies, agent classes).
    Raises ScenarioError naming the file and line."""
    path = Path(path)
    name = str(path)
    try:
        source = decode_utf8(path.read_bytes())
    except OSError as exc:
        raise ScenarioError(name, None, f"cannot read it: {exc.strerror}") from None
    except NotUtf8Error as exc:
        raise ScenarioError(name, exc.line, exc.reason) from None
    scenario = parse_scenario(source, name)
    base = path.resolve().parent
    single = not scenario.boards

    def fail(loc: tuple[Any, ...], reason: str) -> ScenarioError:
        return ScenarioError(name, locate(source, loc), reason)

    plans: list[BoardPlan] = []
    for bi, spec in enumerate(scenario.board_specs()):
        bloc: tuple[Any, ...] = () if single else ("boards", bi)
        try:
            check_board(spec.name)
        except InvalidKeyError as exc:
            raise fail((*bloc, "board" if single else "name"), str(exc)) from None
        if any(p.name == spec.name for p in plans):
            raise fail((*bloc, "name"), f"two boards are named {spec.name!r}")
        if "\0" in spec.policy:
            raise fail((*bloc, "policy"), "the policy path has a NUL character")
        policy_path = (base / spec.policy).resolve()
        try:
            policy_source = decode_policy(policy_path.read_bytes(), str(policy_path))
            policy = parse_policy(policy_source, str(policy_path))
        except OSError as exc:
            raise fail((*bloc, "policy"), f"policy {spec.policy}: {exc.strerror}") from None
        except PolicyError as exc:
            raise fail((*bloc, "policy"), str(exc)) from None
        plan = BoardPlan(spec, policy_path, policy_source, policy)
        for ai, agent in enumerate(spec.agents):
            aloc = (*bloc, "agent", ai)
            if "\0" in agent.spec:
                raise fail((*aloc, "spec"), "the agent spec has a NUL character")
            agent_path = _agent_path(agent.spec, base)
            try:
                cls = load_agent(agent_path)
            except AgentLoadError as exc:
                raise fail((*aloc, "spec"), str(exc)) from None
            if agent.role is not None and agent.role != cls.role:
                raise fail(
                    (*aloc, "role"), f"{agent.spec} has role {cls.role!r}, not {agent.role!r}"
                )
            plan.agents.append(AgentPlan(agent, agent_path, cls.role))
        plans.append(plan)
    result = ScenarioPlan(scenario, path, plans)
    names = {p.name for p in plans}
    _cross_check(scenario, result, names, fail)
    return result


def _cross_check(scenario: Scenario, plan: ScenarioPlan, names: set[str], fail: Any) -> None:
    w = scenario.workload
    for i, b in enumerate(w.boards):
        if b not in names:
            raise fail(("workload", "boards", i), f"workload.boards: no board {b!r}")
    inv = scenario.invariants
    named: list[tuple[tuple[Any, ...], str | None]] = [
        (("workload", "final", "board"), w.final.board)
    ]
    named += [(("invariants", "once", i, "board"), o.board) for i, o in enumerate(inv.once)]
    named += [(("invariants", "counter", i, "board"), c.board) for i, c in enumerate(inv.counter)]
    for loc, ref in named:
        if ref is not None and ref not in names:
            raise fail(loc, f"{'.'.join(map(str, loc))}: no board {ref!r}")
    for i, f in enumerate(scenario.faults):
        loc = ("fault", i)
        if f.board is not None and f.board not in names:
            raise fail((*loc, "board"), f"fault[{i}].board: no board {f.board!r}")
        board = plan.board(f.board)
        if f.kind == "server-restart" and scenario.server.url is not None:
            raise fail((*loc, "kind"), "server-restart needs the embedded server (no url)")
        if f.target == "agent":
            assert f.role is not None
            count = sum(a.spec.count for a in board.agents if a.role == f.role)
            if count == 0:
                raise fail(
                    (*loc, "role"), f"fault[{i}]: no agent of role {f.role!r} on {board.name}"
                )
            if f.index is not None and f.index >= count:
                raise fail((*loc, "index"), f"fault[{i}]: role {f.role} has {count} process(es)")
        elif f.target is not None:
            count = (
                board.spec.controller.count
                if f.target == "controller"
                else board.spec.compactor.count
            )
            if count == 0:
                raise fail((*loc, "target"), f"fault[{i}]: {board.name} runs no {f.target}")
            if f.index is not None and f.index >= count:
                raise fail((*loc, "index"), f"fault[{i}]: {board.name} runs {count} {f.target}(s)")
        if f.at > scenario.run.timeout:
            plan.warnings.append(
                f"fault[{i}] at {f.at}s is after the timeout ({scenario.run.timeout}s)"
            )
    if scenario.invariants.escalation_role is not None:
        try:
            check_role(scenario.invariants.escalation_role)
        except ValueError as exc:
            raise fail(("invariants", "escalation_role"), str(exc)) from None
    for bp in plan.boards:
        needed = {r.role for r in bp.policy.rules}
        needed |= {
            r.consensus.else_role for r in bp.policy.rules if r.consensus and r.consensus.else_role
        }
        missing = sorted(needed - bp.roles())
        if missing:
            plan.warnings.append(
                f"board {bp.name}: no agent runs role(s) {', '.join(missing)}, which the "
                "policy grants activations to"
            )
