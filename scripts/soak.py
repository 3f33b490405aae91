"""Soak test of retention: writers at a steady rate, a compactor with a retention window,
and the server's memory and the processes' CPU sampled along the way.

    python scripts/soak.py                 # 10 minutes, 300 writes/s, a 60 s window
    python scripts/soak.py --minutes 3
    python scripts/soak.py --quick         # 1 minute, 15 s window: a smoke run

Starts a private server (or uses --redis), `--writers` writer processes (puts of ~200-byte
values over `--keys` keys, and a share of proposals on vote/* keys from three proposers
each), and one `blackboard compactor` process with the window as its log and history age
limit. Generated idempotency keys live as long as the window too (BLACKBOARD_AUTO_IDEMPOTENCY_TTL),
so everything the board keeps is bounded by the window. Prints, per minute, the server's
used_memory and its growth, the log length, the writes done, and the compactor's CPU time
against the writers'. Targets: growth flat once the window has filled; compactor CPU <= 10%
of the writers'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import blackboard  # noqa: E402 (after the path setup above)
from blackboard.board.connection import redis_from_url  # noqa: E402
from blackboard.store.server import RedisServer  # noqa: E402

MAIN = "import sys; from blackboard.cli import main; sys.argv[0] = 'blackboard'; main()"
POLICY = """
[[merge]]
pattern = "vote/*"
strategy = "{strategy}"

[[merge]]
pattern = "*"
strategy = "last-writer-wins"
"""
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


# -- writer process ------------------------------------------------------------------------


async def write(url: str, board: str, index: int, rate: float, keys: int, seconds: float) -> None:
    tasks = 8
    rng = random.Random(index)
    payload = "x" * 180
    async with blackboard.connect(url, board=board, writer=f"soak-w{index}") as b:
        proposers = [b.bind(writer=f"soak-w{index}-p{j}") for j in range(3)]
        start = time.monotonic()
        stop_at = start + seconds

        async def run(j: int) -> None:
            step = tasks / rate
            due = start + j / rate
            n = 0
            while due < stop_at:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                n += 1
                if rng.random() < 0.1:
                    vote = f"vote/{rng.randrange(200)}"
                    choice = rng.choice(["yes", "no"])
                    await rng.choice(proposers).propose(vote, choice, round(rng.random(), 2))
                else:
                    await b.put(f"item/{rng.randrange(keys)}", {"n": n, "pad": payload})
                due += step

        await asyncio.gather(*(run(j) for j in range(tasks)))


# -- driver --------------------------------------------------------------------------------


def fmt_mb(n: float) -> str:
    return f"{n / 1e6:8.2f}"


async def sample(url: str, board: str) -> tuple[int, int, int]:
    r = redis_from_url(url, blackboard.Settings())
    try:
        info = await r.info("memory")
        k = blackboard.Board(r, board, "soak").keys_
        xlen = await r.xlen(k.log)
        rev = int(await r.get(k.rev) or 0)
    finally:
        await r.aclose()
    return int(info["used_memory"]), int(xlen), rev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="1 minute with a 15 s window")
    ap.add_argument("--rate", type=float, default=300.0, help="writes per second, in total")
    ap.add_argument("--writers", type=int, default=2, help="writer processes")
    ap.add_argument("--keys", type=int, default=2000, help="distinct item keys")
    ap.add_argument("--window", type=float, default=60.0, help="retention window, seconds")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--redis", default=None, help="server URL (default: a private one)")
    ap.add_argument(
        "--strategy",
        default="highest-confidence",
        help="merge strategy of the vote/* proposals (majority makes ties: escalations)",
    )
    ap.add_argument("--writer", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--board", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.writer is not None:  # a writer process started by the driver
        seconds = args.minutes * 60
        asyncio.run(write(args.redis, args.board, args.writer, args.rate, args.keys, seconds))
        return
    if args.quick:
        args.minutes, args.window, args.sample = 1.0, 15.0, 5.0
    server = None
    url = args.redis
    if url is None:
        server = RedisServer(tcp=True).start()
        url = server.url
    board = "soak-" + uuid.uuid4().hex[:6]
    seconds = args.minutes * 60
    window = int(args.window)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BLACKBOARD_AUTO_IDEMPOTENCY_TTL": str(window),
    }
    policy = Path(tempfile.mkdtemp(prefix="soak-")) / "policy.toml"
    policy.write_text(POLICY.format(strategy=args.strategy))
    compactor_cmd = [
        sys.executable,
        "-c",
        MAIN,
        "compactor",
        "--board",
        board,
        "--redis",
        url,
        "--policy",
        str(policy),
        "--log-max-events",
        "0",
        "--log-max-age",
        str(window),
        "--history-max-age",
        str(window),
        "--retention-every",
        "5",
        "--interval",
        "0.5",
    ]
    log = open(policy.parent / "compactor.log", "wb")  # noqa: SIM115 (kept open for the run)
    compactor = subprocess.Popen(compactor_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    per = args.rate / args.writers
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--writer",
                str(i),
                "--board",
                board,
                "--redis",
                url,
                "--rate",
                str(per),
                "--keys",
                str(args.keys),
                "--minutes",
                str(args.minutes),
            ],
            env=env,
        )
        for i in range(args.writers)
    ]
    print(
        f"soak: board {board} on {url}; {args.writers} writers at {args.rate:g} writes/s in "
        f"total over {args.keys} keys (10% proposals, {args.strategy}); window {window}s "
        f"(log, history, idempotency TTL); {args.minutes:g} min; compactor log {log.name}",
        flush=True,
    )
    print(
        "   t(s)  used_memory(MB)  growth(MB/min)  log_len  revision  writes/s  "
        "compactor_cpu(s)  writers_cpu(s)  ratio",
        flush=True,
    )
    start = time.monotonic()
    rows: list[tuple[float, int, float, float]] = []
    last_mem, last_t, last_rev = None, 0.0, 0
    try:
        while True:
            time.sleep(max(0.0, args.sample - (time.monotonic() - start) % args.sample))
            t = time.monotonic() - start
            mem, xlen, rev = asyncio.run(sample(url, board))
            c_cpu = cpu_seconds(compactor.pid)
            w_cpu = sum(cpu_seconds(w.pid) for w in writers)
            growth = (
                "" if last_mem is None else f"{(mem - last_mem) / 1e6 / ((t - last_t) / 60):+8.2f}"
            )
            rate = (rev - last_rev) / (t - last_t)
            ratio = c_cpu / w_cpu if w_cpu else 0.0
            print(
                f"{t:7.0f}  {fmt_mb(mem)}         {growth:>8}      {xlen:7d}  {rev:8d}  "
                f"{rate:8.0f}  {c_cpu:16.2f}  {w_cpu:14.2f}  {ratio:5.1%}",
                flush=True,
            )
            rows.append((t, mem, c_cpu, w_cpu))
            last_mem, last_t, last_rev = mem, t, rev
            if t >= seconds or any(w.poll() is not None for w in writers):
                break
    finally:
        for w in writers:
            w.wait(timeout=30) if w.poll() is None else None
        compactor.terminate()
        compactor.wait(timeout=30)
        log.close()
        if server is not None:
            server.close()
    settled = [r for r in rows if r[0] >= min(2 * window, seconds / 2)]
    if len(settled) >= 2:
        (t0, m0, _, _), (t1, m1, _, _) = settled[0], settled[-1]
        print(
            f"after the window filled ({t0:.0f}s..{t1:.0f}s): used_memory "
            f"{m0 / 1e6:.2f} -> {m1 / 1e6:.2f} MB, {(m1 - m0) / 1e6 / ((t1 - t0) / 60):+.3f} MB/min"
        )
    if rows:
        c, w = rows[-1][2], rows[-1][3]
        print(
            f"compactor CPU {c:.2f}s vs writers {w:.2f}s: {c / w if w else 0:.1%} (target <= 10%)"
        )
    print(f"compactor exit code {compactor.returncode}")


if __name__ == "__main__":
    main()
