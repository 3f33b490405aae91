"""A run's report: the JSON document (built from the facts, the checks, the samples and the
fault events), the rich summary on the terminal, and writing ``--report`` files (.json, or
.html through report_html). Scenario layer; imports rich and scenario modules only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from blackboard.scenario.facts import Facts
from blackboard.scenario.faults import FaultEvent
from blackboard.scenario.invariants import (
    Expectations,
    InvariantResult,
    completions,
    retry_account,
)
from blackboard.scenario.load import ScenarioPlan
from blackboard.scenario.monitor import Sample
from blackboard.scenario.report_html import dead_letters_line, render_html, retries_line

if TYPE_CHECKING:
    from blackboard.scenario.system import System

__all__ = ["build_report", "percentile", "print_summary", "write_report"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of `values` by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def _latency(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else 0.0,
        "mean": round(sum(values) / len(values), 1) if values else 0.0,
    }


def _buckets(
    comps: list[tuple[int, int]], writes: list[tuple[float, float]], t0_ms: float, t_end: float
) -> list[dict[str, Any]]:
    """Per time bucket: items done, their latency (p50/p99), and probe write latency."""
    last = max([t_end] + [(d - t0_ms) / 1000 for d, _ in comps] + [t for t, _ in writes])
    width = max(1.0, math.ceil(last / 120))
    n = int(last // width) + 1
    done: list[list[float]] = [[] for _ in range(n)]
    wr: list[list[float]] = [[] for _ in range(n)]
    for d, lat in comps:
        done[min(n - 1, max(0, int((d - t0_ms) / 1000 // width)))].append(lat)
    for t, ms in writes:
        wr[min(n - 1, max(0, int(t // width)))].append(ms)
    return [
        {
            "t": round(i * width, 3),
            "width": width,
            "done": len(done[i]),
            "items_per_s": round(len(done[i]) / width, 2),
            "latency_p50_ms": percentile(done[i], 50),
            "latency_p99_ms": percentile(done[i], 99),
            "write_p50_ms": round(percentile(wr[i], 50), 2),
            "write_max_ms": round(max(wr[i]), 2) if wr[i] else 0.0,
        }
        for i in range(n)
    ]


def build_report(
    plan: ScenarioPlan,
    run_id: str,
    names: dict[str, str],
    system: System,
    started: float,
    t0_wall: float,
    t_end: float,
    facts: Facts,
    exp: Expectations,
    results: list[InvariantResult],
    samples: list[Sample],
    events: list[FaultEvent],
    writes: list[tuple[float, float]],
    logs: str | None,
) -> dict[str, Any]:
    """The report document (JSON-ready). `writes` are the probe writes as (seconds after
    the workload started, milliseconds until acknowledged)."""
    s = plan.scenario
    comps = completions(facts, exp)
    lat = [float(v) for _, v in comps]
    created = [i.created_ms for i in facts.items if i.created_ms is not None]
    span = (comps[-1][0] - min(created)) / 1000 if comps and created else 0.0
    t0_ms = t0_wall * 1000
    by_role: dict[str, Counter[str]] = {}
    for b in facts.boards.values():
        for act in b.activations:
            role = f"{b.name}/{act.role}" if len(facts.boards) > 1 else act.role
            by_role.setdefault(role, Counter())[act.state] += 1
    last = samples[-1] if samples else None
    escalated = sum(1 for b in facts.boards.values() for a in b.activations if a.escalated_from)
    human = sum(
        1 for b in facts.boards.values() for a in b.activations if a.role == exp.escalation_role
    )
    return {
        "scenario": s.name,
        "description": s.description,
        "file": str(plan.path),
        "seed": s.seed,
        "run_id": run_id,
        "boards": names,
        "server": "embedded" if system.server is not None else system.shown_url,
        "url": system.shown_url,
        "proxy": system.proxy is not None,
        "started": dt.datetime.fromtimestamp(started, tz=dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(t_end, 3),
        "ok": all(r.ok for r in results),
        "invariants": [r.as_dict() for r in results],
        "stats": {
            "items": s.workload.items,
            "acknowledged": facts.items_expected,
            "done": len(comps),
            "items_per_s": round(len(comps) / span, 2) if span > 0 else 0.0,
            "latency_ms": _latency(lat),
            "activations": {
                "total": sum(sum(c.values()) for c in by_role.values()),
                "by_role": {r: dict(c) for r, c in sorted(by_role.items())},
            },
            "conflicts": last.conflicts if last else 0,
            **retry_account(facts, exp).as_dict(),
            "redeliveries": last.redeliveries if last else 0,
            "escalations": {"escalated": escalated, "to_human": human},
            "acknowledged_writes": len(facts.acks),
        },
        "timeline": {
            "buckets": _buckets(comps, writes, t0_ms, t_end),
            "samples": [x.as_dict() for x in samples],
        },
        "faults": [e.as_dict() for e in events],
        "processes": [
            {
                "name": p.name,
                "kind": p.kind,
                "starts": p.starts,
                "crashes": p.crashes,
                "stop_code": p.stop_code,
            }
            for p in facts.processes
        ],
        "warnings": list(plan.warnings),
        "logs": logs,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write `report` as JSON (``.json``) or a self-contained HTML page (``.html``).
    Raises ValueError for another suffix, OSError when the file cannot be written."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    elif suffix in (".html", ".htm"):
        path.write_text(render_html(report))
    else:
        raise ValueError(f"{path}: a report is .json or .html")


def print_summary(report: dict[str, Any], console: Console) -> None:
    """The run's outcome on the terminal: invariants, then the numbers."""
    st = report["stats"]
    table = Table(title=f"{report['scenario']}: invariants", title_justify="left")
    table.add_column("", width=2)
    table.add_column("invariant")
    table.add_column("result")
    for inv in report["invariants"]:
        mark = "[green]✓[/]" if inv["ok"] else "[red]✗[/]"
        table.add_row(mark, inv["name"], inv["summary"])
        for v in inv["violations"][:5]:
            table.add_row("", "", f"[red]{v}[/]")
        if inv["count"] > 5:
            table.add_row("", "", f"[red]... {inv['count'] - 5} more[/]")
    console.print(table)
    lat = st["latency_ms"]
    acts = st["activations"]
    console.print(
        f"items {st['done']}/{st['acknowledged']} done in {report['duration_s']:.1f}s · "
        f"{st['items_per_s']:.1f} items/s · latency p50 {lat['p50']:.0f} ms, p99 "
        f"{lat['p99']:.0f} ms, max {lat['max']:.0f} ms",
        highlight=False,
    )
    roles = ", ".join(f"{r} {sum(c.values())}" for r, c in acts["by_role"].items())
    esc = st["escalations"]
    console.print(
        f"activations {acts['total']} ({roles}) · conflicts {st['conflicts']} · "
        f"redeliveries {st['redeliveries']} · escalations {esc['escalated']} (to human "
        f"{esc['to_human']}) · faults {len(report['faults'])}",
        highlight=False,
    )
    console.print(f"{retries_line(st)} · {dead_letters_line(st)}", highlight=False)
    verdict = "[bold green]PASS[/]" if report["ok"] else "[bold red]FAIL[/]"
    console.print(f"{verdict} {report['scenario']} (run {report['run_id']})")
    if report.get("logs"):
        console.print(f"process logs kept in {report['logs']}", highlight=False)
