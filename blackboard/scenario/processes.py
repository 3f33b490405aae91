"""Supervision of a scenario's processes: controllers, compactors and agents as real OS
processes (``python -m blackboard ...`` with the runner's own interpreter). Edge layer;
imports nothing of the engine.

Each process gets a stable name (``triage-0``, ``controller-0``, ``team-a/worker-1``), its own
session (a Ctrl-C in the terminal reaches the runner only, which stops everything in order)
and, on Linux, a parent-death signal: if the runner itself is killed, the children get
SIGTERM and shut down cleanly instead of being orphaned. Output goes to one log file per
name. The supervisor knows which exits it caused (faults, the final stop) so that any other
exit shows up as a crash.

Children start as ``python -P -c ...``: ``-P`` keeps the current directory off their
``sys.path``, so a module planted there (a ``msgpack.py`` in a shared working directory) is
never imported in their place. Agents given as ``path.py:Class`` load by file path.
Credentials reach them through their environment, never their command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["Managed", "ProcessSpec", "Supervisor", "blackboard_argv"]

Kind = Literal["controller", "compactor", "agent"]

_PR_SET_PDEATHSIG = 1
try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
except (OSError, AttributeError):  # no libc symbol: children are still stopped by the runner
    _prctl = None


def _die_with_parent() -> None:  # pragma: no cover (runs in the child between fork and exec)
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


_BOOT = (
    "import signal, sys; signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0)); "
    "sys.argv[0] = 'blackboard'; from blackboard.cli import main; main()"
)
"""`python -m blackboard` imports the whole package before its __main__ can install a
handler; this installs one first, so a SIGTERM during start-up exits 0 (nothing started)."""


def blackboard_argv(*args: str) -> list[str]:
    """The command line of the `blackboard` CLI under the current interpreter, with the
    current directory kept off its import path (``-P``)."""
    return [sys.executable, "-P", "-c", _BOOT, *args]


@dataclass(slots=True)
class ProcessSpec:
    name: str
    kind: Kind
    board: str
    argv: list[str]
    role: str = ""


@dataclass(slots=True)
class Exit:
    name: str
    code: int
    time: float
    expected: bool
    cause: str


@dataclass(slots=True)
class Managed:
    """One named process slot: its spec, the running process (if any) and its history."""

    spec: ProcessSpec
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started: float = 0.0  # time.monotonic() of the last start
    expecting: str = ""
    exits: list[Exit] = field(default_factory=list)
    _log: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None


class Supervisor:
    """Starts, kills, restarts and finally stops a scenario's processes."""

    def __init__(self, log_dir: Path, env: dict[str, str], clock: Any = time.monotonic) -> None:
        self.log_dir = log_dir
        self.env = env
        self.clock = clock
        self.procs: dict[str, Managed] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def add(self, spec: ProcessSpec) -> Managed:
        safe = spec.name.replace("/", "_")
        managed = Managed(spec, self.log_dir / f"{safe}.log")
        self.procs[spec.name] = managed
        return managed

    def start(self, name: str) -> Managed:
        """Start the named process (if it is not running). Call from the main thread: the
        parent-death signal follows the thread that forked."""
        m = self.procs[name]
        if m.alive:
            return m
        self.reap()
        if m._log is None:
            m._log = open(m.log_path, "ab")  # noqa: SIM115 (open for the process's life)
        m._log.write(f"--- start {m.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
        m._log.flush()
        m.popen = subprocess.Popen(
            m.spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=m._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )
        m.starts += 1
        m.started = time.monotonic()
        m.expecting = ""
        return m

    def start_all(self) -> None:
        for name in self.procs:
            self.start(name)

    def select(self, kind: Kind, board: str, role: str = "") -> list[Managed]:
        return [
            m
            for m in self.procs.values()
            if m.spec.kind == kind and m.spec.board == board and (not role or m.spec.role == role)
        ]

    def signal(self, name: str, sig: int, cause: str) -> bool:
        """Send `sig` to the named process, noting the exit it causes; False if not running."""
        m = self.procs[name]
        if not m.alive or m.popen is None:
            return False
        m.expecting = cause
        with contextlib.suppress(ProcessLookupError):
            os.kill(m.popen.pid, sig)
        return True

    def reap(self) -> list[Exit]:
        """Record the processes that exited since the last call."""
        found = []
        for m in self.procs.values():
            if m.popen is not None and m.popen.poll() is not None:
                code = m.popen.returncode
                ex = Exit(m.name, code, self.clock(), bool(m.expecting), m.expecting or "crashed")
                m.exits.append(ex)
                found.append(ex)
                m.popen = None
                m.expecting = ""
        return found

    async def wait_exit(self, name: str, within: float) -> int | None:
        """Wait for the named process to exit; its exit code, or None after `within` s."""
        m = self.procs[name]
        deadline = time.monotonic() + within
        while True:  # a Popen has no awaitable exit: poll it
            if m.popen is None:  # already reaped
                return m.exits[-1].code if m.exits else None
            if m.popen.poll() is not None:
                return m.popen.returncode
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)

    def alive(self, kind: Kind | None = None) -> tuple[int, int]:
        """(running, total) processes, of one kind or all."""
        chosen = [m for m in self.procs.values() if kind is None or m.spec.kind == kind]
        return sum(1 for m in chosen if m.alive), len(chosen)

    async def stop_all(self, grace: float) -> dict[str, int]:
        """SIGTERM every running process, wait up to `grace` seconds, SIGKILL the rest.
        Returns the exit code of each process that was running (-9: had to be killed)."""
        running = [m for m in self.procs.values() if m.alive]
        for m in running:
            self.signal(m.name, signal.SIGTERM, "final stop")
        deadline = time.monotonic() + grace
        while True:  # a Popen has no awaitable exit: poll them
            if not any(m.alive for m in running) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        codes = {}
        for m in running:
            if m.alive and m.popen is not None:
                m.popen.kill()
                m.popen.wait()
            codes[m.name] = m.popen.returncode if m.popen is not None else 0
        self.reap()
        self.close_logs()
        return codes

    def kill_all_now(self) -> None:
        """Emergency cleanup (runner failing or interrupted): SIGKILL everything, wait."""
        for m in self.procs.values():
            if m.alive and m.popen is not None:
                m.popen.kill()
        for m in self.procs.values():
            if m.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    m.popen.wait(timeout=5)
        self.reap()
        self.close_logs()

    def close_logs(self) -> None:
        for m in self.procs.values():
            if m._log is not None:
                m._log.close()
                m._log = None
