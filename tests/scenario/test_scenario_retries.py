"""Scenario runs with failing agents (issue 11): `failure_rate` failures are transient and
retried under the role's retry policy until the items resolve; `permanent_failure_rate`
failures are dead letters at once, accounted per role and per item, never counted as lost,
and the run ends without waiting for them. Real `blackboard run` processes on a private
server; no timing assertions, only outcomes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

# quick retries, so that a handful of attempts fits a short run
RETRY = """
[roles.{role}.retry]
attempts = {attempts}
base = 0.05
cap = 0.2
"""

SCENARIO = """\
name = "{name}"
seed = 5
board = "{name}"
policy = "policy.toml"

[[agent]]
spec = "{agents}:Triage"
count = 2
latency = 0.005
{triage}

[[agent]]
spec = "{agents}:Specialist"
count = 2
latency = 0.005
{specialist}

[[agent]]
spec = "{agents}:Resolver"
count = 2
latency = 0.005
{resolver}

[[agent]]
spec = "{agents}:Human"
latency = 0.005

[workload]
items = 40
rate = 40
key = "ticket/{{i}}"
probes = 5

[[workload.values]]
value = {{ subject = "refund for order {{i}}", tier = "basic", status = "new" }}

[workload.final]
field = "status"
equals = "resolved"

[run]
timeout = 90
settle = 10

[invariants]
allowed_failures = {allowed}

[[invariants.once]]
key = "ticket/{{i}}/resolution"
optional = {optional}
"""


def scenario(
    tmp_path: Path, name: str, rates: dict[str, str], attempts: int, allowed: int = 0
) -> Path:
    policy = (ROOT / "policies" / "support.toml").read_text()
    for role in ("triage", "specialist", "resolver", "human"):
        policy += RETRY.format(role=role, attempts=attempts)
    (tmp_path / "policy.toml").write_text(policy)
    path = tmp_path / f"{name}.toml"
    path.write_text(
        SCENARIO.format(
            name=name, agents=ROOT / "agents" / "support.py", allowed=allowed,
            optional=str(allowed > 0).lower(),
            **{role: rates.get(role, "") for role in ("triage", "specialist", "resolver")},
        )
    )  # fmt: skip
    return path


def run(path: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("BLACKBOARD_REDIS_URL", None)
    out = tmp_path / "report.json"
    res = subprocess.run(
        [sys.executable, "-m", "blackboard", "run", str(path), "--quiet", "--report", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    return res, dict(json.loads(out.read_text()))


def test_transient_failures_are_retried_until_every_item_resolves(tmp_path: Path) -> None:
    transient = "failure_rate = 0.3"
    rates = {"triage": transient, "specialist": transient, "resolver": transient}
    res, report = run(scenario(tmp_path, "transient", rates, attempts=12), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(i["ok"] for i in report["invariants"])
    st = report["stats"]
    assert st["done"] == st["acknowledged"] == 40
    retries = st["retries"]
    assert retries["total"] > 0 and retries["items"] > 0
    assert set(retries["by_role"]) >= {"triage", "specialist"}
    assert retries["total"] == sum(retries["by_role"].values())
    assert st["dead_letters"] == {"total": 0, "by_role": {}, "items": 0}
    final = next(i for i in report["invariants"] if i["name"] == "final_state")
    assert f"{retries['items']} done after retries" in final["summary"]
    assert f"retries {retries['total']} (" in res.stdout
    assert "dead letters 0, 0 items failed after all retries" in res.stdout


def test_permanent_failures_are_dead_letters_counted_apart_and_not_lost(tmp_path: Path) -> None:
    rates = {"resolver": "permanent_failure_rate = 0.25"}
    res, report = run(scenario(tmp_path, "permanent", rates, attempts=5, allowed=40), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    names = {i["name"]: i for i in report["invariants"]}
    assert "completed" not in names  # the run did not wait for the dead letters
    assert all(i["ok"] for i in names.values())
    st = report["stats"]
    dead = st["dead_letters"]
    assert dead["total"] > 0 and dead["by_role"] == {"resolver": dead["total"]}
    assert dead["items"] == dead["total"] == st["acknowledged"] - st["done"]
    assert f"{dead['items']} ended in a dead letter, not lost" in names["final_state"]["summary"]
    assert st["retries"]["by_role"].get("resolver", 0) == 0  # Fail is never retried
    assert st["activations"]["by_role"]["resolver"]["failed"] == dead["total"]
