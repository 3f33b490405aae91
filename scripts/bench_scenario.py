"""Scenario benchmark: the support scenario with many tickets and 2, 4 and 8 agent
processes per role, each run on its own private server, printing items/s and item latency.

    python scripts/bench_scenario.py                # 10,000 tickets, 2/4/8 processes per role
    python scripts/bench_scenario.py --items 3000   # fewer tickets
    python scripts/bench_scenario.py --quick        # 1,000 tickets, 2 and 4 processes
    python scripts/bench_scenario.py --rate 200     # an open-loop rate instead of a burst

Each configuration is a full `blackboard run scenarios/support.toml` (controller, compactor,
and N processes of each of the four agent roles, with the scenario's simulated work latency),
so the invariants are checked on every run as well. With a burst (the default) every ticket is
written at once: items/s is the system's capacity, and the latency of an item mostly measures
how long it waited in the backlog (p99 is close to the run's length). With --rate the
latency is the time an item takes at that load. items/s = items done / (last done - first
created). On a 2-core machine more processes compete for the same cores; see the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blackboard.scenario import RunOptions, load_scenario, run_scenario  # noqa: E402
from blackboard.scenario.overrides import override  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=None, help="tickets per run (default 10000)")
    ap.add_argument("--agents", type=int, nargs="+", default=None, help="processes per role")
    ap.add_argument("--rate", type=float, default=None, help="tickets/s (default: a burst)")
    ap.add_argument("--quick", action="store_true", help="1000 tickets, 2 and 4 processes")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "support.toml"))
    args = ap.parse_args()
    items = args.items or (1000 if args.quick else 10_000)
    counts = args.agents or ([2, 4] if args.quick else [2, 4, 8])
    base = load_scenario(args.scenario)
    load = f"{args.rate:g}/s" if args.rate else "burst"
    name = base.scenario.name
    print(f"bench_scenario: {name}, {items} tickets ({load}), processes per role {counts}")
    print(
        "procs/role  processes  items  done   wall(s)  items/s   p50(ms)   p99(ms)   max(ms)  "
        "activations  invariants"
    )
    failed = 0
    for n in counts:
        plan = override(
            base, items=items, agents=n, burst=args.rate is None, rate=args.rate,
            timeout=max(300.0, items / 20),
        )  # fmt: skip
        t = time.monotonic()
        result = asyncio.run(run_scenario(plan, RunOptions(quiet=True)))
        wall = time.monotonic() - t
        st = result.report["stats"]
        lat = st["latency_ms"]
        ok = "pass" if result.exit_code == 0 else "FAIL"
        failed += result.exit_code != 0
        procs = len(result.report["processes"])
        acts = st["activations"]["total"]
        print(
            f"{n:10d}  {procs:9d}  {items:5d}  {st['done']:5d}  {wall:8.1f}  "
            f"{st['items_per_s']:7.1f}  {lat['p50']:8.0f}  {lat['p99']:8.0f}  {lat['max']:8.0f}  "
            f"{acts:11d}  {ok}",
            flush=True,
        )
        if result.exit_code:
            for inv in result.report["invariants"]:
                if not inv["ok"]:
                    print(f"    {inv['name']}: {inv['summary']}; {inv['violations'][:2]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
