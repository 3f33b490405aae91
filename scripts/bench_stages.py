"""CPU per activation of each step of the shared-state pipeline, one step at a time (issue 13).

`scripts/bench_pipeline.py` runs every process at once, so its CPU figures move with how
the scheduler interleaves them (batch sizes, wake-ups) and with other load on the machine.
This script takes the same pipeline (its policy and its S1..S3 agents) apart: it loads
N tickets, then runs the controller and each stage's agent alone, one after the other,
each in a fresh process until it is idle, and reports the CPU that process spent in its
run loop (start-up and imports excluded: `time.process_time()` around `run()`) and the
server's CPU over the same step, per ticket:

    ctl:grant   the controller reads N put events and grants N s1 activations
    S1          the s1 agent claims, runs and commits N activations
    ctl:S1      the controller closes them and grants N s2 activations ... and so on

With `--baseline DIR` (a checkout of another commit, e.g. ``git worktree add /tmp/base
HEAD~3``) rounds alternate the two trees on the same machine and the ratios new/baseline are
printed per step: the firm way to see what a change to the control path costs or saves.

    .venv/bin/python scripts/bench_stages.py [--tickets 6000] [--rounds 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("ctl", "S1", "ctl", "S2", "ctl", "S3", "ctl")
NAMES = ("ctl:grant", "S1", "ctl:S1", "S2", "ctl:S2", "S3", "ctl:S3")


def _child(what: str, url: str, board: str) -> None:
    """Run one step in this process (imported from the tree on sys.path) and print its CPU."""
    import bench_pipeline as bp

    import blackboard
    from blackboard.control.controller import Controller
    from blackboard.control.policy_board import apply_policy
    from blackboard.runtime.agent_runtime import AgentRuntime

    async def main() -> float:
        stop = asyncio.Event()
        writer = "controller" if what == "ctl" else what
        async with blackboard.connect(url, board=board, writer=writer) as b:
            runner: Controller | AgentRuntime
            if what == "ctl":
                await apply_policy(b, bp.POLICY, "pipeline.toml")
                runner = Controller(b, name="ctl")
            else:
                runner = AgentRuntime(getattr(bp, what)(), b, name=what)
            t0 = time.process_time()
            await runner.run(stop, idle_exit=0.3)
            return time.process_time() - t0

    print(f"CPU {asyncio.run(main())}")


def _round(tree: Path, tickets: int) -> list[tuple[float, float]]:
    """(client µs, server µs) per ticket for each step, on a fresh server."""
    from bench_pipeline import _cpu_seconds

    import blackboard

    out: list[tuple[float, float]] = []
    with blackboard.RedisServer(require_password=False) as server:
        pid = server.process.pid if server.process else 0

        async def load() -> None:
            async with blackboard.connect(server.url, board="stages", writer="load") as b:
                for start in range(0, tickets, 256):
                    async with b.batch() as batch:
                        for i in range(start, min(tickets, start + 256)):
                            value = {"state": "s1", "n": i}
                            batch.put(f"ticket/{i}", value, expect=blackboard.ABSENT)

        asyncio.run(load())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "scripts")])}
        for step in STEPS:
            s0 = _cpu_seconds(pid)
            proc = subprocess.run(
                [sys.executable, str(tree / "scripts" / "bench_stages.py"), "--child", step,
                 server.url],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            lines = [x for x in proc.stdout.splitlines() if x.startswith("CPU ")]
            if proc.returncode or not lines:
                raise SystemExit(f"step {step} in {tree} failed:\n{proc.stderr[-3000:]}")
            client = float(lines[0].split()[1])
            out.append((client / tickets * 1e6, (_cpu_seconds(pid) - s0) / tickets * 1e6))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tickets", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", type=Path, default=None, help="a checkout to compare with")
    ap.add_argument("--child", nargs=2, metavar=("STEP", "URL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], "stages")
        return
    trees = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    for tree in trees:
        if not (tree / "scripts" / "bench_stages.py").exists():
            raise SystemExit(f"{tree} has no scripts/bench_stages.py (copy this one there)")
    got: dict[Path, dict[str, list[float]]] = {t: collections.defaultdict(list) for t in trees}
    print(f"bench_stages  {os.cpu_count()} cpus  tickets {args.tickets}  rounds {args.rounds}")
    for _ in range(args.rounds):
        for tree in trees:
            for name, (client, server) in zip(NAMES, _round(tree, args.tickets), strict=True):
                got[tree][f"{name} client"].append(client)
                got[tree][f"{name} server"].append(server)
    med = {t: {k: statistics.median(v) for k, v in got[t].items()} for t in trees}
    head = f"{'µs per ticket (median)':24s}{'this tree':>12s}"
    if args.baseline:
        head += f"{'baseline':>12s}{'ratio':>8s}"
    print(head)
    rows = [*med[ROOT], "total client", "total server"]
    for t in trees:
        med[t]["total client"] = sum(v for k, v in med[t].items() if k.endswith(" client"))
        med[t]["total server"] = sum(v for k, v in med[t].items() if k.endswith(" server"))
    for k in rows:
        line = f"{k:24s}{med[ROOT][k]:12.1f}"
        if args.baseline:
            base = med[trees[1]][k]
            line += f"{base:12.1f}{med[ROOT][k] / base if base else 0:8.2f}"
        print(line)


if __name__ == "__main__":
    main()
