"""Real `blackboard` processes for the observability tests: started with their own
environment, stdout and stderr kept apart, stopped with SIGTERM (each must exit 0)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).resolve().parent / "traced_agents.py"
FAST_ENV = {
    "BLACKBOARD_CLAIM_LEASE": "1.0",
    "BLACKBOARD_CONTROLLER_LEASE": "1.0",
    "BLACKBOARD_AGENT_HEARTBEAT": "0.2",
    "BLACKBOARD_SHUTDOWN_GRACE": "2",
}
_OTEL = tuple(k for k in os.environ if k.startswith("OTEL_"))


class Procs:
    def __init__(self, url: str, board: str, logs: Path) -> None:
        self.url, self.board, self.logs = url, board, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        full = {k: v for k, v in os.environ.items() if k not in _OTEL}
        full.update(FAST_ENV)
        full.update({"BLACKBOARD_REDIS_URL": self.url, "BLACKBOARD_BOARD": self.board})
        full.update(env or {})
        cmd = [sys.executable, "-c", "from blackboard.cli import main; main()", *args]
        with (
            (self.logs / f"{name}.out").open("wb") as out,
            (self.logs / f"{name}.err").open("wb") as err,
        ):
            self.procs[name] = subprocess.Popen(cmd, env=full, cwd=ROOT, stdout=out, stderr=err)

    def stdout(self, name: str) -> str:
        return (self.logs / f"{name}.out").read_text(errors="replace")

    def stderr(self, name: str) -> str:
        return (self.logs / f"{name}.err").read_text(errors="replace")

    def metrics_url(self, name: str, within: float = 20.0) -> str:
        """The scrape URL the process printed on stderr."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            m = re.search(r"metrics: (http://\S+/metrics)", self.stderr(name))
            if m:
                return m.group(1)
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{name} printed no metrics URL: {self.stderr(name)[-2000:]}")

    def stop_all(self) -> dict[str, int]:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = {}
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes
