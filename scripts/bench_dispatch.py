"""Dispatch benchmark: change -> controller -> activation -> agent -> committed result.

Prints, from one run on one private server (unix socket), in R alternating rounds (default
3) so that load from other processes on a shared machine hits both sides alike:
  1. floor: a bare Redis list dispatch: the producer LPUSHes N jobs (pipelined), 2 worker
     processes BRPOP one job at a time and SET a result each (the least a dispatcher does);
  2. end to end: N changes written (pipelined batches), a controller process grants one
     activation each under a one-rule policy, 2 agent processes run a trivial handler that
     commits one result entry (claim-fenced, idempotent); activations/s = N / time from the
     first change to the last result;
  3. latency at a fixed offered load (default 500 changes/s for 6 s, one commit each,
     paced): from the change's commit to its activation written on the role's queue (both
     on the server's clock: the commit's time and the queue entry's id, in ms, so each
     sample is within ±1 ms), and to the activation claimed by an agent (agent clock, µs;
     at most 1 ms long).
Each round's numbers are printed; the verdicts use the median round (throughput, ratio)
and the median round's p99 (latency). Ratios are what to compare on a shared machine.

    .venv/bin/python scripts/bench_dispatch.py [--n 10000] [--rounds 3] [--rate 500] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import blackboard
from blackboard.control.activation import activation_id

ROOT = Path(__file__).resolve().parent.parent
POLICY = """
name = "bench"
[roles.bench]
max_pending = 4096
[[rule]]
name = "job"
on = "job/*"
role = "bench"
"""


class Echo(blackboard.Agent):
    """Trivial handler: one result entry per activation, carrying when it was claimed."""

    role = "bench"
    concurrency = 128

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        now = time.time()
        await board.put(f"done/{activation.key[4:]}", {"claimed": now})


FLOOR_WORKER = """
import sys, redis
r = redis.Redis(unix_socket_path=sys.argv[1])
while True:
    _, job = r.brpop("floor:jobs")
    if job == b"stop":
        break
    r.set(b"floor:result:" + job, b"1")
"""


def _python() -> str:
    return sys.executable


def floor(socket_path: str, n: int, tag: str = "", per_call: bool = False) -> float:
    import redis

    r = redis.Redis(unix_socket_path=socket_path)
    r.delete("floor:jobs")
    workers = [subprocess.Popen([_python(), "-c", FLOOR_WORKER, socket_path]) for _ in range(2)]
    time.sleep(0.5)  # let the workers connect and block
    t0 = time.perf_counter()
    if per_call:  # one call per job, as Celery/arq/RQ benchmarks enqueue
        for i in range(n):
            r.lpush("floor:jobs", f"{tag}{i}")
    for start in range(0, n if not per_call else 0, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + 1000)):
            pipe.lpush("floor:jobs", f"{tag}{i}")
        pipe.execute()
    pipe = r.pipeline(transaction=False)
    for _ in workers:
        pipe.lpush("floor:jobs", "stop")
    pipe.execute()
    for w in workers:
        w.wait()
    elapsed = time.perf_counter() - t0
    done = len(r.keys(f"floor:result:{tag}*"))
    assert done == n, f"floor: {done} results of {n}"
    r.close()
    return n / elapsed


def _spawn(url: str, board: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [_python(), "-c", "from blackboard.cli import main; main()", *args]
    env = {**os.environ, "BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board}
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _print_logs(logs: Path) -> None:
    for log in sorted(logs.glob("*.log")):
        print(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)


async def _wait_revision(b: blackboard.Board, target: int, within: float) -> float:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if await b.revision() >= target:
            return time.perf_counter()
        await asyncio.sleep(0.002)
    raise TimeoutError(f"revision {await b.revision()} of {target} after {within}s")


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def _start_system(url: str, board: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    policy_file = logs / "policy.toml"
    policy_file.write_text(POLICY)
    return [
        _spawn(
            url, board, logs / "controller.log",
            "controller", "--policy", str(policy_file), "--log-level", "warning",
        ),
        *(
            _spawn(
                url, board, logs / f"echo-{i}.log",
                "agent", "run", f"{__file__}:Echo", "--name", f"echo-{i}",
            )
            for i in range(2)
        ),
    ]  # fmt: skip


async def _throughput(b: blackboard.Board, n: int, tag: str, per_call: bool = False) -> float:
    base = await b.revision()
    t0 = time.perf_counter()
    if per_call:  # one board.put per change
        for i in range(n):
            await b.put(f"job/{tag}{i}", {"i": i})
    for start in range(0, n if not per_call else 0, 256):
        async with b.batch() as batch:
            for i in range(start, min(n, start + 256)):
                batch.put(f"job/{tag}{i}", {"i": i})
    t_end = await _wait_revision(b, base + 2 * n, 120)
    return n / (t_end - t0)


async def _latency(
    b: blackboard.Board, rate: float, seconds: float, tag: str
) -> tuple[list[float], list[float]]:
    base = await b.revision()
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await b.put(f"job/{tag}{i}", {"i": i})
    await _wait_revision(b, base + 2 * count, 60)
    return await _latencies(b, base, f"job/{tag}")


async def run_rounds(url: str, socket_path: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    board = f"bench{os.getpid()}"
    logs = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    procs = await _start_system(url, board, logs)
    rounds: list[dict[str, Any]] = []
    try:
        async with blackboard.connect(url, board=board, writer="bench") as b:
            deadline = time.time() + 20
            while time.time() < deadline:
                agents: Any = await b.redis.hlen(b.keys_.agents)
                if await b.get("sys/policy") is not None and agents >= 2:
                    break
                await asyncio.sleep(0.05)
            await _throughput(b, 200, "w")  # warm-up: scripts loaded, connections open
            for r in range(args.rounds):
                floor_rate = await asyncio.to_thread(floor, socket_path, args.n, f"r{r}-")
                rate = await _throughput(b, args.n, f"t{r}-")
                n_call = max(1, args.n // 2)
                floor_call = await asyncio.to_thread(floor, socket_path, n_call, f"c{r}-", True)
                rate_call = await _throughput(b, n_call, f"p{r}-", per_call=True)
                grant, claim = await _latency(b, args.rate, args.seconds, f"l{r}-")
                rounds.append({
                    "floor": floor_rate, "e2e": rate, "grant": grant, "claim": claim,
                    "floor_call": floor_call, "e2e_call": rate_call,
                })  # fmt: skip
                print(
                    f"round {r + 1}: floor {floor_rate:6.0f}/s  end to end {rate:6.0f}/s "
                    f"(ratio {rate / floor_rate:.2f})  per call {rate_call:5.0f}/s of "
                    f"{floor_call:5.0f}/s ({rate_call / floor_call:.2f})  change->activation p50 "
                    f"{_pct(grant, 50):.0f} ms p99 {_pct(grant, 99):.0f} ms  "
                    f"->claimed p50 {_pct(claim, 50):.2f} ms p99 {_pct(claim, 99):.2f} ms",
                    flush=True,
                )
    except BaseException:
        _print_logs(logs)
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(logs, ignore_errors=True)
    clean = all(p.returncode == 0 for p in procs)
    print(f"controller and agents exited 0 after SIGTERM: {clean}")
    return rounds


async def _latencies(
    b: blackboard.Board, base: int, prefix: str
) -> tuple[list[float], list[float]]:
    """ms from each change's commit to its activation queued, and to it claimed."""
    commit_ms: dict[str, int] = {}
    claimed: dict[str, float] = {}
    done = "done/" + prefix[4:]
    async for c in b.watch("*", since=base, idle_timeout=0.3):
        if c.key.startswith(prefix):
            commit_ms[c.key] = c.time_ms
        elif c.key.startswith(done) and isinstance(c.value, dict):
            claimed["job/" + c.key[5:]] = c.value["claimed"] * 1000
    keys = list(commit_ms)
    async with b.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(b.keys_.activation(activation_id("bench", key, 1)), "q")
        queued: list[Any] = await pipe.execute()
    grant: list[float] = []
    claim: list[float] = []
    for key, entry_id in zip(keys, queued, strict=True):
        grant.append(int(entry_id.split(b"-")[0]) - commit_ms[key])
        claim.append(claimed[key] - commit_ms[key])
    return grant, claim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="jobs/changes per throughput round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--rate", type=float, default=500.0, help="offered changes/s for latency")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each latency window")
    args = ap.parse_args()
    # a private unix socket in a 0700 temporary directory: the floor workers connect bare
    with blackboard.RedisServer(require_password=False) as server:
        rounds = asyncio.run(run_rounds(server.url, server.socket_path, args))
    # the median round; with an even count, the worse of the two middle ones
    mid = sorted(rounds, key=lambda r: r["e2e"] / r["floor"])[(len(rounds) - 1) // 2]
    e2e = statistics.median(r["e2e"] for r in rounds)
    floor_rate = statistics.median(r["floor"] for r in rounds)
    ratio = mid["e2e"] / mid["floor"]
    by_p99 = sorted(rounds, key=lambda r: _pct(r["grant"], 99))[len(rounds) // 2]
    p50, p99 = _pct(by_p99["grant"], 50), _pct(by_p99["grant"], 99)
    c50, c99 = _pct(by_p99["claim"], 50), _pct(by_p99["claim"], 99)
    pooled = [x for r in rounds for x in r["grant"]]
    print(f"bare list LPUSH/BRPOP floor, 2 workers : {floor_rate:8.0f} jobs/s (median)")
    print(
        f"end to end, 2 agent processes          : {e2e:8.0f} activations/s (median)"
        f"   [{'PASS' if e2e >= 2000 else 'MISS'} >= 2000/s]"
    )
    print(
        f"ratio to the floor (median round)      : {ratio:8.2f}"
        f"   [{'PASS' if ratio >= 0.7 else 'MISS'} >= 0.7]"
    )
    call = statistics.median(r["e2e_call"] / r["floor_call"] for r in rounds)
    print(
        f"per call: one board.put per change     : "
        f"{statistics.median(r['e2e_call'] for r in rounds):8.0f} activations/s, "
        f"{call:.2f} x the floor's one LPUSH per job"
        f"   [{'PASS' if call >= 0.5 else 'MISS'} >= 0.5]"
    )
    print(
        f"change -> activation at {args.rate:.0f}/s (median round): p50 {p50:.0f} ms  "
        f"p99 {p99:.0f} ms (±1 ms)   [{'PASS' if p99 <= 5 else 'MISS'} p99 <= 5 ms]"
        f"   all rounds pooled: p99 {_pct(pooled, 99):.0f} ms"
    )
    print(f"change -> claimed by an agent (same round): p50 {c50:.2f} ms  p99 {c99:.2f} ms")


if __name__ == "__main__":
    main()
