"""Bringing a scenario's system up: the server (embedded or a URL), the latency proxy, board
names, the environment and command lines of every process, and the wait until the system
is ready (scenario layer; imports server, connection, board, control.read, settings, redact,
secret_files and scenario.model/processes/proxy).

The embedded server requires a password. The runner connects with the full URL; processes
get the URL without user or password on their command line (``ps`` shows it) and the
credentials through their environment: ``BLACKBOARD_REDIS_USERNAME`` and a 0600 password
file (``BLACKBOARD_REDIS_PASSWORD_FILE``) in the run's private directory. Whatever shows a
URL (notes, reports) shows `System.shown_url`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from blackboard.board.client import Board
from blackboard.control import read
from blackboard.errors import BlackboardError, BoardUnavailableError
from blackboard.scenario.load import ScenarioPlan
from blackboard.scenario.processes import Managed, ProcessSpec, Supervisor, blackboard_argv
from blackboard.scenario.proxy import LatencyProxy
from blackboard.settings import Settings
from blackboard.store.redact import redact_url, split_credentials
from blackboard.store.secret_files import write_password_file
from blackboard.store.server import RedisServer

__all__ = [
    "DEFAULT_SETTINGS",
    "System",
    "child_env",
    "credentials_env",
    "process_specs",
    "wait_ready",
]

DEFAULT_SETTINGS: dict[str, Any] = {
    "claim_lease": 3.0,
    "controller_lease": 2.0,
    "shutdown_grace": 2.0,
    "agent_heartbeat": 0.5,
}
"""Settings every scenario process gets unless the scenario's [settings] says otherwise:
short leases, so that a killed agent's or controller's work is taken over within seconds."""


@dataclass(slots=True)
class System:
    """The server side of a run: where the runner connects (`direct_url`, with credentials),
    where the processes connect (`process_url`, without them; through the proxy when there
    is one) and the credentials they get through their environment."""

    direct_url: str
    process_url: str
    server: RedisServer | None = None
    proxy: LatencyProxy | None = None
    names: dict[str, str] = field(default_factory=dict)
    """logical board name -> board name used on the server"""
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def shown_url(self) -> str:
        """`direct_url` without its password: what notes and reports show."""
        return redact_url(self.direct_url)

    @classmethod
    async def start(cls, plan: ScenarioPlan, url: str | None) -> System:
        """Start the embedded server (unless a URL is given) and the proxy if asked for.
        Raises BoardUnavailableError, ServerNotFoundError."""
        spec = plan.scenario.server
        url = url or spec.url
        server = None
        if url is None:
            server = RedisServer(binary=spec.binary, tcp=True, appendonly=spec.appendonly)
            await asyncio.to_thread(server.start)
            url = server.url
        try:
            bare, username, password = split_credentials(url)
        except ValueError:
            if server is not None:
                await asyncio.to_thread(server.close)
            raise BoardUnavailableError(f"bad Redis URL {redact_url(url)!r}") from None
        system = cls(url, bare, server, username=username, password=password)
        wants_proxy = spec.proxy
        if wants_proxy is None:
            wants_proxy = any(f.kind == "latency" for f in plan.scenario.faults)
        if wants_proxy:
            parsed = urlparse(url)
            if parsed.scheme != "redis" or not parsed.port:
                await system.close()
                raise BoardUnavailableError(
                    f"the latency proxy needs a redis://host:port URL, not {redact_url(url)!r}"
                )
            system.proxy = await LatencyProxy(parsed.hostname or "127.0.0.1", parsed.port).start()
            path = parsed.path or "/0"
            system.process_url = f"redis://127.0.0.1:{system.proxy.port}{path}"
        return system

    async def close(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()
            self.proxy = None
        if self.server is not None:
            await asyncio.to_thread(self.server.close)
            self.server = None


def child_env(plan: ScenarioPlan) -> dict[str, str]:
    """The environment of every process: this one's, minus a board or URL it may carry,
    plus the scenario's settings as BLACKBOARD_* variables."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("BLACKBOARD_REDIS_URL", "BLACKBOARD_BOARD")
    }
    for name, value in {**DEFAULT_SETTINGS, **plan.scenario.settings}.items():
        env[f"BLACKBOARD_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def credentials_env(env: dict[str, str], system: System, directory: Path) -> dict[str, str]:
    """`env` with the credentials of `system`'s URL: its user, and its password in a new
    0600 file in `directory` (the run's private directory) instead of any password `env`
    held. Unchanged when the URL has none: the processes use what their environment holds."""
    env = dict(env)
    if system.username is not None:
        env["BLACKBOARD_REDIS_USERNAME"] = system.username
    if system.password is not None:
        path = directory / "redis.password"
        path.unlink(missing_ok=True)
        write_password_file(path, system.password)
        env.pop("BLACKBOARD_REDIS_PASSWORD", None)
        env["BLACKBOARD_REDIS_PASSWORD_FILE"] = str(path)
    return env


def scenario_settings(plan: ScenarioPlan) -> Settings:
    """The Settings the processes run with (for the runner's own timings)."""
    return Settings.model_validate({**DEFAULT_SETTINGS, **plan.scenario.settings})


def _option(value: Any, names: dict[str, str]) -> str:
    """An agent option as `-o KEY=VALUE` text; ``{board:NAME}`` in a string becomes the
    name board NAME has on the server."""
    if isinstance(value, str):
        text = value
        for logical, actual in names.items():
            text = text.replace(f"{{board:{logical}}}", actual)
        return text
    return json.dumps(value)


def process_specs(plan: ScenarioPlan, names: dict[str, str], url: str) -> list[ProcessSpec]:
    """Every controller, compactor and agent process of the scenario, named
    ``controller-0``, ``compactor-0``, ``<role>-<n>`` (``<board>/`` first with several boards)."""
    specs = []
    several = len(plan.boards) > 1
    for b in plan.boards:
        actual = names[b.name]
        prefix = f"{b.name}/" if several else ""
        common = ["--board", actual, "--redis", url]
        for k in range(b.spec.controller.count):
            argv = blackboard_argv(
                "controller", *common, "--name", f"controller-{k}", "--log-level", "info"
            )
            specs.append(ProcessSpec(f"{prefix}controller-{k}", "controller", b.name, argv))
        c = b.spec.compactor
        for k in range(c.count):
            argv = blackboard_argv(
                "compactor", *common, "--name", f"compactor-{k}",
                "--interval", str(c.interval), "--lease-ttl", str(c.lease_ttl),
                "--log-max-events", str(c.log_max_events), "--log-max-age", str(c.log_max_age),
                "--history-max-age", str(c.history_max_age),
                "--retention-every", str(c.retention_every),
            )  # fmt: skip
            specs.append(ProcessSpec(f"{prefix}compactor-{k}", "compactor", b.name, argv))
        per_role: dict[str, int] = {}
        for a in b.agents:
            options = {"seed": plan.scenario.seed, **a.spec.agent_options()}
            opt_args: list[str] = []
            for key, value in options.items():
                opt_args += ["-o", f"{key}={_option(value, names)}"]
            if a.spec.concurrency is not None:
                opt_args += ["--concurrency", str(a.spec.concurrency)]
            for _ in range(a.spec.count):
                n = per_role.get(a.role, 0)
                per_role[a.role] = n + 1
                name = f"{a.role}-{n}"
                argv = blackboard_argv(
                    "agent",
                    "run",
                    a.path,
                    *common,
                    "--name",
                    name,
                    "--log-level",
                    "info",
                    *opt_args,
                )
                specs.append(ProcessSpec(f"{prefix}{name}", "agent", b.name, argv, a.role))
    return specs


async def process_ready(m: Managed, boards: dict[str, Board]) -> bool:
    """Whether a (re)started process is up: an agent has a heartbeat from its pid, a
    compactor has reported, a controller leads or has been running for 3 seconds (a standby
    says nothing). Raises BoardUnavailableError."""
    board = boards[m.spec.board]
    local = m.name.rsplit("/", 1)[-1]
    if m.spec.kind == "agent":
        beat = await read.heartbeat(board, local)
        return beat is not None and beat.pid == m.pid
    if m.spec.kind == "compactor":
        text = m.log_path.read_bytes()
        return b" on board " in text[text.rfind(b"--- start") :]
    lease = await read.lease_holder(board)
    leads = lease is not None and lease.endswith(":" + local)
    return leads or time.monotonic() - m.started >= 3.0


async def wait_ready(
    plan: ScenarioPlan, boards: dict[str, Board], sup: Supervisor, within: float
) -> None:
    """Wait until each board's controller leads and every agent has registered.
    Raises BlackboardError naming what is missing, or the process that died."""
    deadline = time.monotonic() + within
    missing: list[str] = []
    while True:
        crashed = [e for e in sup.reap() if not e.expected]
        if crashed:
            m = sup.procs[crashed[0].name]
            tail = (
                m.log_path.read_text(errors="replace").splitlines()[-8:]
                if m.log_path.exists()
                else []
            )
            raise BlackboardError(
                f"{m.name} exited with code {crashed[0].code} while starting:\n  "
                + "\n  ".join(tail)
            )
        missing = []
        for b in plan.boards:
            board = boards[b.name]
            try:
                if b.spec.controller.count and await read.lease_holder(board) is None:
                    missing.append(f"{b.name}: no controller leads yet")
                registered = await read.agent_names(board)
            except Exception as exc:
                raise BoardUnavailableError(f"cannot read board {b.name}: {exc}") from exc
            for m in sup.select("agent", b.name):
                if m.name.rsplit("/", 1)[-1] not in registered:
                    missing.append(f"{m.name} not registered")
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise BlackboardError(
                f"the system was not ready within {within:g}s: " + "; ".join(missing[:5])
            )
        await asyncio.sleep(0.1)
