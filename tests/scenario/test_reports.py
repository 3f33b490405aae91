"""Reports and workloads without a server: percentiles, the HTML page, seeded items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blackboard.scenario import load_scenario
from blackboard.scenario.model import parse_scenario
from blackboard.scenario.overrides import override
from blackboard.scenario.report import percentile, write_report
from blackboard.scenario.report_html import render_html
from blackboard.scenario.workload import make_items

ROOT = Path(__file__).resolve().parents[2]


def report(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario": "s<1>",
        "description": "d & e",
        "run_id": "r1",
        "started": "2026-01-01T00:00:00+00:00",
        "duration_s": 12.5,
        "boards": {"b": "b"},
        "server": "embedded",
        "seed": 1,
        "ok": False,
        "invariants": [
            {
                "name": "final_state",
                "ok": True,
                "summary": "3 items checked",
                "violations": [],
                "count": 0,
            },
            {
                "name": "acknowledged_writes",
                "ok": False,
                "summary": "1 of 3",
                "count": 1,
                "violations": ["probe b:probe/1 v1: <script>alert(1)</script>"],
            },
        ],
        "stats": {
            "items": 3,
            "acknowledged": 3,
            "done": 3,
            "items_per_s": 1.5,
            "latency_ms": {"p50": 10.0, "p90": 20.0, "p99": 30.0, "max": 31.0, "mean": 12.0},
            "activations": {"total": 6, "by_role": {"triage": {"done": 6}}},
            "conflicts": 0,
            "retries": {"total": 3, "by_role": {"triage": 3}, "activations": 2, "items": 2},
            "dead_letters": {"total": 1, "by_role": {"resolver": 1}, "items": 1},
            "redeliveries": 1,
            "escalations": {"escalated": 1, "to_human": 1},
            "acknowledged_writes": 3,
        },
        "timeline": {
            "buckets": [
                {
                    "t": float(t),
                    "width": 1.0,
                    "done": 1,
                    "items_per_s": 1.0,
                    "latency_p50_ms": 10.0,
                    "latency_p99_ms": 30.0,
                    "write_p50_ms": 1.0,
                    "write_max_ms": 2.0,
                }
                for t in range(3)
            ],
            "samples": [],
        },
        "faults": [
            {"t": 1.0, "kind": "latency", "target": "proxy", "detail": "+30 ms", "duration": 2.0},
            {"t": 2.0, "kind": "kill", "target": "triage-0", "detail": "SIGKILL", "duration": 0.0},
        ],
        "processes": [
            {"name": "triage-0", "kind": "agent", "starts": 2, "crashes": [], "stop_code": 0}
        ],
        "warnings": [],
        "logs": None,
    }
    base.update(extra)
    return base


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def test_the_html_page_is_self_contained_and_escaped(tmp_path: Path) -> None:
    page = render_html(report())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 4  # throughput, latency, probe writes, fault lanes
    for remote in ("http://", "https://", "<script", "src=", "@import", "<link"):
        assert remote not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "s&lt;1&gt;" in page
    assert "FAIL" in page and "triage-0" in page and "SIGKILL" in page
    assert "retries 3 (triage 3) on 2 activations, 2 items done after retries" in page
    assert "dead letters 1 (resolver 1), 1 items failed after all retries" in page
    path = tmp_path / "r.html"
    write_report(report(), path)
    assert path.read_text() == page
    write_report(report(), tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["scenario"] == "s<1>"
    with pytest.raises(ValueError):
        write_report(report(), tmp_path / "r.txt")


def test_a_run_without_faults_or_completions_still_renders() -> None:
    empty = report(faults=[], timeline={"buckets": [], "samples": []}, duration_s=0.0)
    page = render_html(empty)
    assert "No faults." in page and page.count("<svg") == 3


def test_items_are_seeded_weighted_and_filled_in() -> None:
    doc = """
name = "x"
board = "b"
policy = "p"
[workload]
items = 400
rate = 1
key = "t/{board}/{i}"
boards = ["a", "b"]
[[workload.values]]
weight = 3
value = { s = "n {i}", tags = ["{board}"], n = 1 }
[[workload.values]]
weight = 1
value = { s = "vip" }
"""
    w = parse_scenario(doc).workload
    items = make_items(w, ["a", "b"], seed=1)
    assert items == make_items(w, ["a", "b"], seed=1)
    assert items != make_items(w, ["a", "b"], seed=2)
    assert items[0].key == "t/a/0" and items[1].board == "b" and items[1].key == "t/b/1"
    common = [it for it in items if it.value.get("n") == 1]
    assert common[0].value == {"s": f"n {common[0].index}", "tags": [common[0].board], "n": 1}
    assert 250 < len(common) < 350  # about 3 in 4


def test_overrides_replace_counts_and_rate() -> None:
    plan = load_scenario(ROOT / "scenarios" / "support.toml")
    quick = override(plan, items=20, burst=True, agents=3, seed=5)
    assert quick.scenario.workload.items == 20 and quick.scenario.workload.burst
    assert quick.scenario.workload.rate is None and quick.scenario.seed == 5
    assert {a.spec.count for a in quick.boards[0].agents} == {3}
    assert plan.scenario.workload.items == 300  # the original is untouched
    slow = override(plan, rate=2.0)
    assert slow.scenario.workload.rate == 2.0 and not slow.scenario.workload.burst
