"""Smoke test of scripts/bench_commit.py: every phase runs and its correctness checks hold.

No timing assertions: this machine is shared and slow, and the benchmark's figures are for
people to read. What must hold anywhere: the hot counters equal the successful increments,
and `apply` never conflicts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_commit.py"


@pytest.mark.slow
def test_bench_commit_quick_json() -> None:
    binary = "redis" if shutil.which("redis-server") else "valkey"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--binary", binary],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode in (0, 1), proc.stderr
    res = json.loads(proc.stdout)
    phases = res["phases"]
    assert set(phases) == {"a", "b", "c", "d", "e", "f"}
    for name in "abcef":
        assert phases[name]["commits"] > 0, name
    assert phases["a"]["not_ok"] == 0
    assert phases["f"]["errors"] == 0 and phases["f"]["batch_size"] == 64

    # (e): apply never conflicts, and the sum is exactly the number of successful applies
    assert phases["e"]["conflicts"] == 0
    assert phases["e"]["final_sum"] == phases["e"]["successful"] > 0

    # (d): every method at every process count; each final counter == successful increments
    methods = {variant.partition("@")[0] for variant in phases["d"]}
    assert {"update", "watch", "lock", "apply"} <= methods
    for variant, runs in phases["d"].items():
        assert len(runs) >= 2, variant
        for procs, run in runs.items():
            assert run["successful"] > 0, (variant, procs)
            assert run["final_counter"] == run["successful"], (variant, procs, run)
            assert run["check"] == "OK", (variant, procs)
            if variant == "apply":
                assert run["conflicts"] == 0, procs

    assert {t["verdict"] for t in res["targets"]} <= {"PASS", "MISS"}
    assert res["checks_ok"] is True
    assert proc.returncode == 0
