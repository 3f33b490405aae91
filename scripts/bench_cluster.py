"""Many boards over a Redis Cluster against one node: total commits/s and the ratio.

Each of --procs client processes owns --boards-per-proc boards and commits batched puts
(--batch per round trip) round-robin over its boards for --seconds. The same workload runs
against one standalone node and against clusters of 1..--masters primaries started here on
loopback ports. Ratios are within one run. On a 2-core machine the client processes and the
servers share the same two cores, so growth with shards is bounded by CPU, not by Redis:
the script prints the CPU seconds the servers and the clients used so the limit is visible.

    python scripts/bench_cluster.py [--seconds 5] [--procs 2] [--masters 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time
from typing import Any

import orjson

import blackboard
from blackboard.store.server import RedisClusterServers, RedisServer


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / 100.0


def _client(url: str, boards: list[str], seconds: float, batch: int, start: Any, q: Any) -> None:
    async def run() -> int:
        conns = []
        stack = []
        for name in boards:
            cm = blackboard.connect(url, board=name, writer="bench")
            stack.append(cm)
            conns.append(await cm.__aenter__())
        start.wait()
        done = 0
        deadline = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < deadline:
            b = conns[i % len(conns)]
            async with b.batch() as bt:
                for j in range(batch):
                    bt.put(f"k/{(i * batch + j) % 1000}", {"n": j})
            done += sum(1 for r in bt.results if isinstance(r, blackboard.Entry))
            i += 1
        for cm in stack:
            await cm.__aexit__(None, None, None)
        return done

    t0 = time.process_time()
    n = asyncio.run(run())
    q.put((n, time.process_time() - t0))


def _run(
    url: str, procs: int, per_proc: int, seconds: float, batch: int, tag: str
) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    q = ctx.Queue()
    ps = [
        ctx.Process(
            target=_client,
            args=(url, [f"{tag}-p{p}-b{b}" for b in range(per_proc)], seconds, batch, start, q),
        )
        for p in range(procs)
    ]
    for p in ps:
        p.start()
    time.sleep(1.0 + 0.3 * procs)  # let every client connect before the clock starts
    start.set()
    results = [q.get(timeout=seconds + 60) for _ in ps]
    for p in ps:
        p.join()
    total = sum(n for n, _ in results)
    client_cpu = sum(c for _, c in results)
    return total / seconds, client_cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--boards-per-proc", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--masters", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    with RedisServer(tcp=True) as single:
        assert single.process is not None
        cpu0 = _proc_cpu(single.process.pid)
        rate, ccpu = _run(single.url, a.procs, a.boards_per_proc, a.seconds, a.batch, "single")
        rows.append(
            {
                "setup": "one node",
                "shards": 1,
                "commits_per_s": rate,
                "server_cpu_s": _proc_cpu(single.process.pid) - cpu0,
                "client_cpu_s": ccpu,
            }
        )
    for m in range(1, a.masters + 1):
        with RedisClusterServers(m) as cl:
            pids = [n.process.pid for n in cl.nodes if n.process]
            cpu0 = sum(_proc_cpu(p) for p in pids)
            rate, ccpu = _run(cl.url, a.procs, a.boards_per_proc, a.seconds, a.batch, f"c{m}")
            rows.append(
                {
                    "setup": f"cluster {m} primaries",
                    "shards": m,
                    "commits_per_s": rate,
                    "server_cpu_s": sum(_proc_cpu(p) for p in pids) - cpu0,
                    "client_cpu_s": ccpu,
                }
            )
    base = rows[0]["commits_per_s"]
    for r in rows:
        r["ratio_vs_one_node"] = r["commits_per_s"] / base if base else 0.0
    if a.json:
        print(orjson.dumps({"rows": rows, "args": vars(a)}).decode())
        return 0
    print(
        f"{'setup':<22}{'commits/s':>12}{'x one node':>12}{'server cpu s':>14}{'client cpu s':>14}"
    )
    for r in rows:
        print(
            f"{r['setup']:<22}{r['commits_per_s']:>12.0f}{r['ratio_vs_one_node']:>12.2f}"
            f"{r['server_cpu_s']:>14.2f}{r['client_cpu_s']:>14.2f}"
        )
    wall = a.seconds
    print(
        f"(cpu budget per phase on this machine: {mp.cpu_count()} cores x {wall:.0f} s = "
        f"{mp.cpu_count() * wall:.0f} cpu s; when server + client cpu reach it, the machine "
        "is the limit, not Redis)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
