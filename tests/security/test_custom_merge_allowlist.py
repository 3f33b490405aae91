"""A policy names custom merge functions; only the compactor's allow-list maps names to code.

The planted module records its import in a file, so "never imported" is checked by a side
effect, not by trusting the code path."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import blackboard
from blackboard.board.retention import Retention
from blackboard.cli import app
from blackboard.compaction.compactor import POLICY_KEY, Compactor
from blackboard.compaction.merge import rules_from_document
from blackboard.compaction.merge_functions import MergeFunctions
from blackboard.compaction.reconcile import escalation_key
from blackboard.errors import MergePolicyError

NO_RETENTION = Retention(
    log_max_events=None, log_max_age=None, history_max_age=None, activation_max_age=None
)


class Planted:
    """A module on sys.path that writes `marker` when it is imported."""

    def __init__(self, root: Path) -> None:
        self.name = "planted_" + uuid.uuid4().hex[:8]
        self.marker = root / f"{self.name}.imported"
        (root / f"{self.name}.py").write_text(
            "import pathlib\n"
            f"pathlib.Path({str(self.marker)!r}).write_text('imported')\n"
            "def longest(current, proposals):\n"
            "    return max((p.value for p in proposals), key=len)\n"
        )

    @property
    def imported(self) -> bool:
        return self.marker.exists() or self.name in sys.modules


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Planted]:
    monkeypatch.syspath_prepend(str(tmp_path))
    p = Planted(tmp_path)
    yield p
    sys.modules.pop(p.name, None)


@pytest.fixture
def rmtree_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: calls.append(a))
    return calls


async def _diverge(board: blackboard.Board, key: str) -> None:
    await board.bind(writer="a").propose(key, "short")
    await board.bind(writer="b").propose(key, "much longer")


@pytest.mark.parametrize("function", ["shutil:rmtree", "os:system", "planted:longest"])
def test_an_import_path_in_a_policy_is_refused_when_validated(
    function: str, planted: Planted, rmtree_calls: list[Any]
) -> None:
    function = function.replace("planted", planted.name)
    with pytest.raises(MergePolicyError, match="not a plain name"):
        rules_from_document(
            {"merge": [{"pattern": "*", "strategy": "custom", "function": function}]}
        )
    assert not planted.imported and rmtree_calls == []


@pytest.mark.parametrize("function", ["shutil.rmtree", "unlisted", "planted"])
async def test_a_stored_policy_naming_an_unlisted_function_escalates_and_imports_nothing(
    board: blackboard.Board, function: str, planted: Planted, rmtree_calls: list[Any]
) -> None:
    function = function.replace("planted", planted.name)
    await board.put(
        POLICY_KEY,
        {"merge": [{"pattern": "summary/*", "strategy": "custom", "function": function}]},
    )
    await _diverge(board, "summary/1")
    lines: list[str] = []
    c = Compactor(
        board, report=lines.append, retention=NO_RETENTION, merge_functions=MergeFunctions()
    )
    stats = await c.run(until_idle=True)
    assert stats.escalated == 1 and stats.merged == 0
    escalation = await board.get(escalation_key("summary/1"))
    assert escalation is not None
    assert "not on the compactor's allow-list" in escalation.value["reason"]
    assert function in escalation.value["reason"]
    assert any("its entries escalate" in line and function in line for line in lines)
    assert any("escalated to a human" in line for line in lines)
    assert not planted.imported and rmtree_calls == []


async def test_an_allowed_name_runs_the_function_it_maps_to(
    board: blackboard.Board, planted: Planted
) -> None:
    rules = rules_from_document(
        {"merge": [{"pattern": "summary/*", "strategy": "custom", "function": "longest"}]}
    )
    await _diverge(board, "summary/1")
    c = Compactor(
        board,
        rules=rules,
        retention=NO_RETENTION,
        merge_functions={"longest": f"{planted.name}:longest"},
    )
    assert not planted.imported  # allowed is not loaded yet: loading happens on use
    stats = await c.run(until_idle=True)
    assert stats.merged == 1 and planted.imported
    assert (await board.get("summary/1")).value == "much longer"  # type: ignore[union-attr]


def test_settings_and_entry_points_feed_the_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted: Planted
) -> None:
    monkeypatch.setenv("BLACKBOARD_MERGE_FUNCTIONS", f"a={planted.name}:longest, b=x.y:z")
    assert blackboard.Settings().merge_functions == {"a": f"{planted.name}:longest", "b": "x.y:z"}
    dist = tmp_path / "bbplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bbplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[blackboard.merge_functions]\nplugged = {planted.name}:longest\n"
    )
    allowed = MergeFunctions({"a": f"{planted.name}:longest"})
    assert {"a", "plugged"} <= set(allowed.names())
    assert not planted.imported
    assert allowed.resolve("plugged").__name__ == "longest" and planted.imported
    assert "plugged" not in MergeFunctions(use_entry_points=False).names()
    with pytest.raises(MergePolicyError, match=r"not package\.module:function"):
        MergeFunctions({"a": "not a path"})
    with pytest.raises(MergePolicyError, match="plain name"):
        MergeFunctions({"a/b": f"{planted.name}:longest"})


def test_the_cli_option_is_checked(redis_server: blackboard.RedisServer) -> None:
    r = CliRunner().invoke(
        app, ["compactor", "--redis", redis_server.url, "--merge-function", "no-equals-sign"]
    )
    assert r.exit_code == 2 and "--merge-function" in r.stderr
    r = CliRunner().invoke(
        app, ["compactor", "--redis", redis_server.url, "--merge-function", "x=shutil"]
    )
    assert r.exit_code == 2 and "package.module:function" in r.stderr
