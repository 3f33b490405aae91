"""Real scenario runs: `blackboard run` as a process, starting its own private server
(TCP + AOF), controller, compactor and agent processes. Small versions of the bundled
support and chaos scenarios must pass; a scenario built to break the rules must fail; an
interrupted run must leave nothing behind. No timing assertions: only outcomes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.slow


def run(args: list[str], tmp_path: Path, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the run's log directory lands here
    env.pop("BLACKBOARD_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "blackboard", "run", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def leftovers(url: str) -> list[str]:
    """Processes still holding on to the run's server (its port in their command line)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"127.0.0.1:{port}" in line]


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def invariants(report: dict[str, Any]) -> dict[str, bool]:
    return {i["name"]: i["ok"] for i in report["invariants"]}


def test_support_passes_with_every_invariant(tmp_path: Path) -> None:
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    args = ["scenarios/support.toml", "--items", "40", "--rate", "40"]
    res = run([*args, "--report", str(out_json), "--report", str(out_html), "--quiet"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS support" in res.stdout
    report = load(out_json)
    assert report["ok"] and report["server"] == "embedded"
    assert invariants(report) == {
        "final_state": True, "acknowledged_writes": True, "no_duplicate_effect": True,
        "no_stuck_activations": True, "escalations": True, "clean_shutdown": True,
    }  # fmt: skip
    st = report["stats"]
    assert st["acknowledged"] == st["done"] == 40
    assert st["acknowledged_writes"] >= 40  # the tickets, plus probe writes
    assert set(st["activations"]["by_role"]) <= {"triage", "specialist", "resolver", "human"}
    assert st["activations"]["by_role"]["triage"] == {"done": 40}
    assert all(p["stop_code"] == 0 and not p["crashes"] for p in report["processes"])
    assert len(report["processes"]) == 9
    page = out_html.read_text()
    assert "<svg" in page and "http" not in page
    assert report["logs"] is None  # a passing run removes its logs
    assert leftovers(report["url"]) == []


def test_chaos_survives_every_fault_kind(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    res = run(
        ["scenarios/chaos.toml", "--items", "40", "--rate", "8", "--report", str(out)], tmp_path
    )
    report = load(out)
    assert res.returncode == 0, res.stdout + res.stderr + json.dumps(report["invariants"], indent=1)
    assert all(invariants(report).values())
    kinds = {f["kind"] for f in report["faults"]}
    assert kinds >= {
        "kill", "stop", "restart", "server-stop", "server-start", "drop-connections", "latency",
    }  # fmt: skip
    starts = {p["name"]: p["starts"] for p in report["processes"]}
    assert starts["controller-0"] == 2 and starts["compactor-0"] == 2 and starts["human-0"] == 2
    assert report["stats"]["done"] == 40
    assert report["proxy"] is True
    assert leftovers(report["url"]) == []


def test_a_double_effect_and_a_lost_write_fail_the_run(tmp_path: Path) -> None:
    out = tmp_path / "broken.json"
    res = run([str(DATA / "broken.toml"), "--report", str(out)], tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL broken" in res.stdout
    report = load(out)
    failed = {name for name, ok in invariants(report).items() if not ok}
    assert {"no_duplicate_effect", "acknowledged_writes"} <= failed
    dup = next(i for i in report["invariants"] if i["name"] == "no_duplicate_effect")
    assert "(duplicated effect)" in dup["violations"][0]
    lost = next(i for i in report["invariants"] if i["name"] == "acknowledged_writes")
    assert "ticket/" in lost["violations"][0]
    assert report["logs"] and Path(report["logs"]).is_dir()  # kept to look into
    assert leftovers(report["url"]) == []


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "blackboard", "run", "scenarios/support.toml", "--items", "100000",
         "--rate", "50"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    url = ""
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        found = re.search(r"processes on (redis://\S+),", line)
        if found:
            url = found.group(1)
        if url and "done" in line:  # the workload is running
            break
    assert url, "".join(lines)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted" in rest
    assert leftovers(url) == []
