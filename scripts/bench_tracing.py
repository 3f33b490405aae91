"""Tracing cost benchmark: the dispatch path of ``scripts/bench_dispatch.py`` (change ->
controller -> activation -> agent handler -> committed result) with telemetry off and on,
in one run, on one private server (unix socket).

Modes, alternated within each round so that load from other processes on a shared machine
hits each alike (fresh processes per mode and round):
  off      no telemetry (the default of every process)
  traces   tracing on in the writer, the controller and the 2 agent processes: the
           OpenTelemetry SDK with a batch span processor and an exporter that drops what
           it gets (a no-op exporter: every span is still made, recorded and handed over)
  sampled  as traces, sampling 1 trace in 10 (ParentBased(TraceIdRatioBased(0.1)), what
           OTEL_TRACES_SAMPLER=parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG=0.1 sets)
  api      instrumentation on, the OpenTelemetry API without an SDK (its no-op tracer)
  all      (--metrics) traces and metrics on (an in-memory reader, never collected)
Each round writes N changes (pipelined batches of 256) under a one-rule policy; an
activation per change, a trivial handler that commits one result. Printed per mode: the
median activations/s over the rounds, and CPU time per activation of the controller and
of the agents (read from /proc, less noisy than wall time on a busy machine); per mode
against off, the median of the per-round throughput ratios with the verdict of the target
(>= 0.90: at most 10 % slower), and the ratio of CPU per activation.

    .venv/bin/python scripts/bench_tracing.py [--n 5000] [--rounds 3] [--metrics]
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
from blackboard import telemetry

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
# run the CLI with telemetry as in the mode (argv[1]); scripts/bench_tracing.py:_tracing
LAUNCH = """
import sys
sys.path.insert(0, sys.argv[2])
from bench_tracing import _tracing
_tracing(sys.argv[1], set_global=True)
sys.argv = ["blackboard", *sys.argv[3:]]
from blackboard.cli import main
main()
"""


class Echo(blackboard.Agent):
    """Trivial handler: one result entry per activation."""

    role = "bench"
    concurrency = 128

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.put(f"done/{activation.key[4:]}", {"ok": True})


def _tracing(mode: str, set_global: bool = False) -> Any:
    """Telemetry in this process as in `mode`; returns the tracer provider to close."""
    telemetry.disable()
    if mode == "off":
        return None
    if mode == "api":  # the API's own no-op tracer: no SDK at all
        from opentelemetry.trace import NoOpTracerProvider

        telemetry.enable(NoOpTracerProvider(), metrics=False)
        return None
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sampler = ParentBased(TraceIdRatioBased(0.1)) if mode == "sampled" else None
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    meters = None
    if mode == "all":  # no exemplars, as telemetry.setup has it
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter

        off = AlwaysOffExemplarFilter()
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()], exemplar_filter=off)
    if set_global:  # as `telemetry.setup` does: user code in handlers gets them too
        trace.set_tracer_provider(provider)
        if meters is not None:
            metrics.set_meter_provider(meters)
    telemetry.enable(provider, meters, metrics=mode == "all")
    return provider


def _spawn(mode: str, url: str, board: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", LAUNCH, mode, str(Path(__file__).parent), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board})
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _print_logs(logs: Path, tag: str) -> None:
    for log in sorted(logs.glob(f"{tag}-*.log")):
        print(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_revision(b: blackboard.Board, target: int, within: float) -> float:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if await b.revision() >= target:
            return time.perf_counter()
        await asyncio.sleep(0.002)
    raise TimeoutError(f"revision {await b.revision()} of {target} after {within}s")


async def _throughput(b: blackboard.Board, n: int, tag: str) -> float:
    base = await b.revision()
    t0 = time.perf_counter()
    for start in range(0, n, 256):
        async with b.batch() as batch:
            for i in range(start, min(n, start + 256)):
                batch.put(f"job/{tag}{i}", {"i": i})
    t_end = await _wait_revision(b, base + 2 * n, 120)
    return n / (t_end - t0)


async def one_round(url: str, mode: str, n: int, tag: str, logs: Path) -> dict[str, float]:
    """A fresh system in `mode`: warm up, then N changes; activations/s and CPU µs each."""
    board = f"bench{os.getpid()}{tag}"
    (logs / "policy.toml").write_text(POLICY)
    procs = [
        _spawn(
            mode, url, board, logs / f"{tag}-controller.log",
            "controller", "--policy", str(logs / "policy.toml"), "--log-level", "warning",
        ),
        *(
            _spawn(
                mode, url, board, logs / f"{tag}-echo-{i}.log",
                "agent", "run", f"{__file__}:Echo", "--name", f"echo-{i}",
                "--log-level", "warning",
            )
            for i in range(2)
        ),
    ]  # fmt: skip
    provider = _tracing(mode)
    try:
        async with blackboard.connect(url, board=board, writer="bench") as b:
            deadline = time.time() + 30
            while time.time() < deadline:
                agents: Any = await b.redis.hlen(b.keys_.agents)
                if await b.get("sys/policy") is not None and agents >= 2:
                    break
                await asyncio.sleep(0.05)
            await _throughput(b, 200, "w")  # warm-up: scripts loaded, connections open
            cpu0 = [_cpu_s(p.pid) for p in procs]
            rate = await _throughput(b, n, "t")
            cpu1 = [_cpu_s(p.pid) for p in procs]
    except BaseException:
        _print_logs(logs, tag)
        raise
    finally:
        telemetry.disable()
        if provider is not None:
            provider.shutdown()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    return {
        "rate": rate,
        "controller_us": used[0] / n * 1e6,
        "agents_us": sum(used[1:]) / n * 1e6,
        "clean": float(all(p.returncode == 0 for p in procs)),
    }


async def run(url: str, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    modes = ["off", "traces", "sampled", "api", *(["all"] if args.metrics else [])]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    logs = Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    try:
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else modes[::-1]
            for mode in order:
                got = await one_round(url, mode, args.n, f"r{r}{mode}", logs)
                results[mode].append(got)
                print(
                    f"round {r + 1} {mode:6s}: {got['rate']:6.0f} activations/s  CPU per "
                    f"activation: controller {got['controller_us']:4.0f} µs, agents "
                    f"{got['agents_us']:4.0f} µs",
                    flush=True,
                )
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="changes per round and mode")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs every mode")
    ap.add_argument("--metrics", action="store_true", help="also: traces and metrics on")
    args = ap.parse_args()
    with blackboard.RedisServer(require_password=False) as server:
        results = asyncio.run(run(server.url, args))
    med = {
        m: {k: statistics.median(r[k] for r in rs) for k in ("rate", "controller_us", "agents_us")}
        for m, rs in results.items()
    }
    print()
    for m, v in med.items():
        print(
            f"{m:7s}: {v['rate']:6.0f} activations/s (median)   CPU per activation: controller "
            f"{v['controller_us']:4.0f} µs, agents {v['agents_us']:4.0f} µs"
        )
    off_cpu = med["off"]["controller_us"] + med["off"]["agents_us"]
    for mode, what in (
        ("traces", "tracing on, every trace (no-op exporter)"),
        ("sampled", "tracing on, 1 trace in 10"),
        ("api", "instrumented, API without an SDK"),
        ("all", "traces and metrics on"),
    ):
        if mode not in med:
            continue
        # per round (the same machine state), then the median of those ratios
        ratio = statistics.median(
            x["rate"] / o["rate"] for o, x in zip(results["off"], results[mode], strict=True)
        )
        cpu = (med[mode]["controller_us"] + med[mode]["agents_us"]) / off_cpu
        verdict = "PASS" if ratio >= 0.9 else "MISS"
        print(
            f"{what:42s} / off: throughput {ratio:.3f} ({(1 - ratio) * 100:+.1f} % slower) "
            f"[{verdict} >= 0.90], CPU per activation x{cpu:.2f}"
        )
    clean = all(r["clean"] for rs in results.values() for r in rs)
    print(f"controller and agents exited 0 after SIGTERM in every round: {clean}")


if __name__ == "__main__":
    main()
