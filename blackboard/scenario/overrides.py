"""Command-line overrides of a loaded scenario: item count, rate or burst, processes per
agent entry, seed, timeout (pure; imports scenario.model/load). Used by ``blackboard run
--items ...`` and scripts/bench_scenario.py; the result is validated like the file was."""

from __future__ import annotations

import dataclasses

from pydantic import ValidationError

from blackboard.scenario.load import AgentPlan, ScenarioPlan
from blackboard.scenario.model import ScenarioError, Workload

__all__ = ["override"]


def override(
    plan: ScenarioPlan,
    *,
    items: int | None = None,
    rate: float | None = None,
    burst: bool = False,
    agents: int | None = None,
    seed: int | None = None,
    timeout: float | None = None,
) -> ScenarioPlan:
    """`plan` with the given values replaced. Raises ScenarioError for a value the
    scenario's models refuse."""
    s = plan.scenario
    w = s.workload.model_dump(by_alias=True)
    if items is not None:
        w["items"] = items
    if burst:
        w["burst"], w["rate"] = True, None
    elif rate is not None:
        w["burst"], w["rate"] = False, rate
    try:
        workload = Workload.model_validate(w)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ScenarioError(str(plan.path), None, f"override: {first['msg']}") from None
    update: dict[str, object] = {"workload": workload}
    if seed is not None:
        update["seed"] = seed
    if timeout is not None:
        update["run"] = s.run.model_copy(update={"timeout": timeout, "ready_timeout": timeout})
    scenario = s.model_copy(update=update)
    boards = []
    for b in plan.boards:
        agent_plans = b.agents
        spec = b.spec
        if agents is not None:
            agent_plans = [
                AgentPlan(a.spec.model_copy(update={"count": agents}), a.path, a.role)
                for a in b.agents
            ]
            spec = spec.model_copy(update={"agents": [a.spec for a in agent_plans]})
        boards.append(dataclasses.replace(b, spec=spec, agents=agent_plans))
    return ScenarioPlan(scenario, plan.path, boards, list(plan.warnings))
