"""Scenario files: validation errors name the line (pure; files are temporary)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from blackboard.cli import app
from blackboard.control.tomllines import locate
from blackboard.scenario import ScenarioError, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name = "t"
board = "b"
policy = "policy.toml"

[[agent]]
spec = "agent.py:Echo"
count = 1

[workload]
items = 3
rate = 10
key = "item/{i}"

[[workload.values]]
value = { status = "new" }
"""

POLICY = """\
name = "p"
[[rule]]
name = "r"
on = "item/*"
role = "echo"
"""

AGENT = """\
import blackboard

class Echo(blackboard.Agent):
    role = "echo"

    async def handle(self, activation, board):
        await board.put(activation.key + "/done", {"ok": True})
"""


def error_of(source: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(source, "s.toml")
    return info.value


def test_a_valid_document_parses() -> None:
    s = parse_scenario(GOOD)
    assert s.board == "b" and s.agents[0].count == 1 and s.workload.rate == 10
    [board] = s.board_specs()
    assert board.name == "b" and board.agents[0].spec == "agent.py:Echo"


def test_toml_syntax_error_gives_its_line() -> None:
    err = error_of(GOOD + "\n[workload.final\n")
    assert err.line == 17 and "s.toml:17" in str(err)


def test_unknown_key_points_at_its_line() -> None:
    err = error_of(GOOD.replace("count = 1", "cuont = 1"))
    assert err.line == 7
    assert "agent.0.cuont" in err.reason and "Extra inputs" in err.reason


def test_wrong_type_points_at_its_line() -> None:
    err = error_of(GOOD.replace("items = 3", "items = 'many'"))
    assert err.line == 10 and "workload.items" in err.reason


def test_a_model_check_points_at_its_table() -> None:
    err = error_of(GOOD.replace("rate = 10", "rate = 10\nburst = true"))
    assert err.line == 9 and "rate or burst" in err.reason


def test_a_bad_fault_points_at_its_table() -> None:
    fault = '\n[[fault]]\nat = 1\nkind = "kill"\n\n[[fault]]\nat = 2\nkind = "kill"\nrole = "x"\n'
    err = error_of(GOOD + fault)
    # the first fault lacks a target too: the first error is reported, at its table
    assert err.line == 17 and "needs target" in err.reason


def test_an_unknown_fault_kind_is_refused() -> None:
    err = error_of(GOOD + '\n[[fault]]\nat = 1\nkind = "meteor"\n')
    assert err.line == 19 and "fault.0.kind" in err.reason


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1.5", "less than or equal to 1"),
        ("-0.01", "greater than or equal to 0"),
        ("'often'", "valid number"),
    ],
)
def test_a_bad_permanent_failure_rate_points_at_its_line(value: str, says: str) -> None:
    err = error_of(GOOD.replace("count = 1", f"count = 1\npermanent_failure_rate = {value}"))
    assert err.line == 8 and "agent.0.permanent_failure_rate" in err.reason
    assert says in err.reason


def test_failure_rates_reach_the_agent_options_once() -> None:
    doc = GOOD.replace("count = 1", "count = 1\nfailure_rate = 0.2\npermanent_failure_rate = 0.01")
    [agent] = parse_scenario(doc).agents
    assert agent.agent_options() == {"failure_rate": 0.2, "permanent_failure_rate": 0.01}
    twice = doc.replace("count = 1", "count = 1\noptions = { permanent_failure_rate = 0.5 }")
    err = error_of(twice)
    assert err.line == 5 and "permanent_failure_rate is given twice" in err.reason


def test_unknown_setting_and_placeholders() -> None:
    assert "no setting 'claim_leas'" in error_of(GOOD + "\n[settings]\nclaim_leas = 1\n").reason
    err = error_of(GOOD.replace('key = "item/{i}"', 'key = "item/{n}"'))
    assert err.line == 12 and "{n}" in err.reason


def test_nested_arrays_of_tables_are_numbered_like_pydantic() -> None:
    doc = (
        'name = "x"\n[[boards]]\nname = "a"\npolicy = "p"\n  [[boards.agent]]\n  spec = "a:A"\n'
        '[[boards]]\nname = "b"\npolicy = "p"\n  [[boards.agent]]\n  spec = "a:A"\n'
        '  [[boards.agent]]\n  spec = "a:B"\n  count = 0\n'
    )
    assert locate(doc, ("boards", 1, "agent", 1, "count")) == 14
    assert locate(doc, ("boards", 1, "agent", 0)) == 10
    assert locate(doc, ("boards", 0, "name")) == 3
    err = error_of(doc + "[workload]\nitems = 1\nburst = true\n[[workload.values]]\nvalue = {}\n")
    assert err.line == 14 and "boards.1.agent.1.count" in err.reason


def write(tmp_path: Path, scenario: str, policy: str = POLICY, agent: str = AGENT) -> Path:
    (tmp_path / "policy.toml").write_text(policy)
    (tmp_path / "agent.py").write_text(agent)
    path = tmp_path / "s.toml"
    path.write_text(scenario)
    return path


def test_load_resolves_files_next_to_the_scenario(tmp_path: Path) -> None:
    plan = load_scenario(write(tmp_path, GOOD))
    [board] = plan.boards
    assert board.policy.name == "p" and board.agents[0].role == "echo"
    assert board.agents[0].path == f"{tmp_path / 'agent.py'}:Echo"
    assert plan.warnings == []


def test_load_errors_point_at_the_line_that_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, GOOD.replace("agent.py:Echo", "agent.py:Nope")))
    assert info.value.line == 6 and "has no Nope" in info.value.reason
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, GOOD.replace("policy.toml", "missing.toml")))
    assert info.value.line == 3
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, GOOD, policy="[[rule]]\nname = 1\n"))
    assert info.value.line == 3 and "invalid policy" in info.value.reason
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, GOOD.replace("count = 1", 'count = 1\nrole = "other"')))
    assert info.value.line == 8 and "has role 'echo'" in info.value.reason


def test_faults_must_name_what_exists(tmp_path: Path) -> None:
    fault = '\n[[fault]]\nat = 1\nkind = "kill"\ntarget = "agent"\nrole = "ghost"\n'
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, GOOD + fault))
    assert info.value.line == 21 and "no agent of role 'ghost'" in info.value.reason
    restart = (
        '\n[server]\nurl = "redis://127.0.0.1:1/0"\n[[fault]]\nat = 1\nkind = "server-restart"\n'
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, GOOD + restart))
    assert info.value.line == 21 and "embedded" in info.value.reason


def test_a_role_the_policy_grants_without_agents_is_a_warning(tmp_path: Path) -> None:
    policy = POLICY + '[[rule]]\nname = "s"\non = "x/*"\nrole = "nobody"\n'
    plan = load_scenario(write(tmp_path, GOOD, policy=policy))
    assert any("nobody" in w for w in plan.warnings)


def test_every_bundled_scenario_is_valid() -> None:
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    assert {f.stem for f in files} >= {"support", "fraud", "hot-keys", "chaos", "teams"}
    for f in files:
        plan = load_scenario(f)
        assert plan.warnings == [], (f, plan.warnings)


def test_chaos_has_every_fault_kind() -> None:
    plan = load_scenario(ROOT / "scenarios" / "chaos.toml")
    kinds = {f.kind for f in plan.scenario.faults}
    targets = {f.target for f in plan.scenario.faults}
    assert kinds >= {"kill", "stop", "restart", "server-restart", "drop-connections", "latency"}
    assert targets >= {"agent", "controller", "compactor"}


def test_cli_exits_2_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("items = 3", "items = 0"))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert f"{path}:10" in result.output and "workload.items" in result.output
    result = CliRunner().invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "cannot read it" in result.output
    result = CliRunner().invoke(app, ["run", str(write(tmp_path, GOOD)), "--check"])
    assert result.exit_code == 0 and "valid" in result.output
    result = CliRunner().invoke(app, ["run", str(path), "--report", "x.pdf"])
    assert result.exit_code == 2 and ".json or .html" in result.output


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", "/abs", "x\\u001by", ""])
def test_a_name_that_could_leave_the_runs_folder_is_refused(name: str) -> None:
    err = error_of(GOOD.replace('name = "t"', f'name = "{name}"'))
    assert err.line == 1, str(err)
    assert str(err).startswith("invalid scenario s.toml:1: name:")


def test_files_that_are_not_utf8_name_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    path.write_bytes(GOOD.encode().replace(b'board = "b"', b'board = "b\xff"'))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.source, info.value.line) == (str(path), 2)
    assert "not UTF-8 text: byte 0xff" in info.value.reason

    path = write(tmp_path, GOOD)
    (tmp_path / "policy.toml").write_bytes(b'name = "p"\n# \xc3\x28\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.line == 3  # the scenario's `policy =` line
    assert f"{tmp_path / 'policy.toml'}:2: not UTF-8 text: byte 0xc3" in info.value.reason


def test_run_check_on_a_bad_file_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('name = "t"', 'name = "../../x"'))
    for args in (["run", str(path), "--check"], ["run", str(path)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"error: invalid scenario {path}:1: name:")
        assert len(result.stderr.splitlines()) == 1
    path.write_bytes(b"\xff\xfe")
    result = CliRunner().invoke(app, ["run", str(path), "--check"])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "not UTF-8" in result.stderr
