"""A primary with replicas, and optionally Redis Sentinels, on loopback ports (edge-level
helper beside server.py, for tests, benchmarks and local trials; imports server, errors and
secret_files only).

Every process shares one password (random unless given; see `RedisServer`): the data nodes
as ``requirepass`` and ``masterauth``, the Sentinels as their own ``requirepass`` and as the
``auth-pass`` they use towards the data nodes, all read from 0600 config files. `url` is a
``redis+sentinel://`` URL when there are Sentinels (clients also need the Sentinels' password:
`client_settings()`), else the primary's URL. Sentinel mode is built into the server binary
(``redis-server --sentinel``, ``valkey-server --sentinel``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from blackboard.errors import BoardUnavailableError
from blackboard.store.secret_files import write_password_file
from blackboard.store.server import (
    RedisServer,
    config_string,
    find_server_binary,
    free_port,
    new_password,
    resp_command,
)

__all__ = ["ReplicaSet", "SentinelServer"]


def _command(port: int, password: str | None, *args: str, timeout: float = 1.0) -> bytes:
    """One command over loopback TCP (after AUTH); the raw reply, b'' when unreachable."""
    return _commands(port, password, [args], timeout)


def _commands(
    port: int, password: str | None, commands: list[tuple[str, ...]], timeout: float = 1.0
) -> bytes:
    """Commands on one connection (after AUTH); their raw replies together, b'' when the
    server is unreachable."""
    request = b"".join(resp_command(*args) for args in commands)
    replies = len(commands)
    if password is not None:
        request, replies = resp_command("AUTH", password) + request, replies + 1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if _complete(reply, replies):
                    break
    except OSError:
        return b""
    if password is not None:
        reply = reply.split(b"\r\n", 1)[1] if b"\r\n" in reply else b""
    return reply


def _complete(reply: bytes, replies: int) -> bool:
    """Whether `reply` holds `replies` whole RESP2 replies (enough for our few commands)."""
    pos = 0
    for _ in range(replies):
        end = _skip(reply, pos)
        if end is None:
            return False
        pos = end
    return True


def _skip(data: bytes, pos: int) -> int | None:
    line_end = data.find(b"\r\n", pos)
    if line_end < 0:
        return None
    kind, head = data[pos : pos + 1], data[pos + 1 : line_end]
    pos = line_end + 2
    if kind == b"$":
        n = int(head)
        return pos if n < 0 else (pos + n + 2 if len(data) >= pos + n + 2 else None)
    if kind == b"*":
        for _ in range(max(0, int(head))):
            nxt = _skip(data, pos)
            if nxt is None:
                return None
            pos = nxt
    return pos


class SentinelServer:
    """One Sentinel process watching `service` (the primary at `primary_port`)."""

    def __init__(
        self,
        primary_port: int,
        *,
        replica_ports: list[int] | None = None,
        service: str,
        password: str | None,
        quorum: int,
        binary: str,
        directory: str,
        down_after_ms: int,
        failover_timeout_ms: int,
    ) -> None:
        self.primary_port = primary_port
        self.replica_ports = replica_ports or []
        self.service = service
        self.password = password
        self.quorum = quorum
        self.binary = binary
        self.directory = directory
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        conf = os.path.join(self.directory, "sentinel.conf")
        s = self.service
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {config_string(self.directory)}",
            f"logfile {config_string(os.path.join(self.directory, 'sentinel.log'))}",
            f"sentinel monitor {s} 127.0.0.1 {self.primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {s} {self.down_after_ms}",
            f"sentinel failover-timeout {s} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {s} 1",
            # known at once: otherwise found through the primary's INFO, up to 10 s later
            *(f"sentinel known-replica {s} 127.0.0.1 {port}" for port in self.replica_ports),
        ]
        if self.password is not None:
            secret = config_string(self.password)
            lines += [
                f"requirepass {secret}",
                f"sentinel auth-pass {s} {secret}",
                f"sentinel sentinel-pass {secret}",
            ]
        # the Sentinel rewrites this file (its state); it must stay private: it has the password
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> SentinelServer:
        """Start it and wait until it answers; raises BoardUnavailableError."""
        os.makedirs(self.directory, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, self._config(), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise BoardUnavailableError(f"sentinel exited at start: {self.log_tail()}")
            if _command(self.port, self.password, "PING").startswith(b"+PONG"):
                return self
            time.sleep(0.05)
        self.stop()
        raise BoardUnavailableError(f"sentinel did not answer within {timeout}s")

    def primary_port_now(self) -> int | None:
        """The port of the primary this Sentinel names now (None when it cannot say)."""
        reply = _command(
            self.port, self.password, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
        )
        parts = reply.split(b"\r\n")
        return int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = Path(self.directory, "sentinel.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, kill: bool = False) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill() if kill else proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class ReplicaSet:
    """A primary (`servers[0]` at start) with `replicas` replicas and `sentinels` Sentinels
    (quorum: a majority of them). `servers` keeps its order through failovers; `primary()`
    says which one leads now."""

    def __init__(
        self,
        replicas: int = 1,
        *,
        sentinels: int = 0,
        binary: str | None = None,
        appendonly: bool = False,
        service: str = "blackboard",
        password: str | None = None,
        require_password: bool = True,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 4000,
    ) -> None:
        self.binary = binary or find_server_binary()
        self.replicas = replicas
        self.appendonly = appendonly
        self.service = service
        if password is None and require_password:
            password = new_password()
        self.password = password
        self.directory = tempfile.mkdtemp(prefix="blackboard-replicas-")
        self.password_file = os.path.join(self.directory, "password")
        self.servers: list[RedisServer] = []
        self.sentinels = [
            SentinelServer(
                0,
                service=service,
                password=password,
                quorum=sentinels // 2 + 1,
                binary=self.binary,
                directory=os.path.join(self.directory, f"sentinel{i}"),
                down_after_ms=down_after_ms,
                failover_timeout_ms=failover_timeout_ms,
            )
            for i in range(sentinels)
        ]

    @property
    def bare_url(self) -> str:
        """The URL without credentials: the Sentinels' when there are any."""
        if not self.sentinels:
            return self.servers[0].bare_url
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    @property
    def url(self) -> str:
        """`bare_url` with the data nodes' password, for clients in this process."""
        if not self.sentinels:
            return self.servers[0].url
        if self.password is None:
            return self.bare_url
        rest = self.bare_url.partition("://")[2]
        return f"redis+sentinel://:{quote(self.password, safe='')}@{rest}"

    def client_settings(self) -> dict[str, Any]:
        """Settings fields a client needs besides `url` (the Sentinels' password)."""
        return {"sentinel_password": self.password} if self.sentinels else {}

    def start(self, timeout: float = 20.0) -> ReplicaSet:
        """Start the primary, the replicas (synced) and the Sentinels (each seeing every
        replica); raises BoardUnavailableError."""
        if self.password is not None:
            write_password_file(Path(self.password_file), self.password, replace=True)
        try:
            primary = self._server(0, [])
            self.servers.append(primary.start())
            for i in range(1, self.replicas + 1):
                args = ["--replicaof", "127.0.0.1", str(primary.port)]
                self.servers.append(self._server(i, args).start())
            deadline = time.monotonic() + timeout
            self.wait_synced(max(0.1, deadline - time.monotonic()))
            for sentinel in self.sentinels:
                sentinel.primary_port = primary.port
                sentinel.replica_ports = [s.port for s in self.servers[1:]]
                sentinel.start()
            self._wait_sentinels_see_replicas(deadline)
        except BaseException:
            self.close()
            raise
        return self

    def _server(self, i: int, args: list[str]) -> RedisServer:
        node_dir = os.path.join(self.directory, f"server{i}")
        os.makedirs(node_dir)
        return RedisServer(
            binary=self.binary,
            tcp=True,
            directory=node_dir,
            appendonly=self.appendonly,
            password=self.password,
            require_password=self.password is not None,
            # a replica's full sync starts at once, not after the default 5 s
            extra_args=["--repl-diskless-sync-delay", "0", *args],
        )

    def command(self, server: RedisServer, *args: str) -> bytes:
        """One command on `server`, its raw RESP reply (b'' when it does not answer)."""
        return _command(server.port, self.password, *args)

    def role(self, server: RedisServer) -> str:
        """'master', 'slave', or 'down'."""
        if server.process is None:
            return "down"
        reply = self.command(server, "ROLE").split(b"\r\n")
        return reply[2].decode() if len(reply) > 2 else "down"

    def primary(self) -> RedisServer | None:
        """The server that is primary now (None while there is none)."""
        found = [s for s in self.servers if self.role(s) == "master"]
        return found[0] if len(found) == 1 else None

    def replication_info(self, server: RedisServer) -> dict[str, str]:
        reply = self.command(server, "INFO", "replication").decode(errors="replace")
        pairs = (line.split(":", 1) for line in reply.splitlines() if ":" in line)
        return {k: v for k, v in pairs}

    def wait_synced(self, timeout: float = 10.0) -> None:
        """Wait until every running replica is linked to the primary and acknowledges its
        writes (a WAIT on a probe write: after a full sync the primary streams nothing to a
        replica until that replica's first acknowledgement, up to a second later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            primary = self.primary()
            if primary is not None:
                replicas = [s for s in self.servers if s is not primary and s.process]
                linked = all(
                    self.replication_info(s).get("master_port") == str(primary.port)
                    and self.replication_info(s).get("master_link_status") == "up"
                    for s in replicas
                )
                probe = [
                    ("SET", "replica-set:probe", "1"),
                    ("DEL", "replica-set:probe"),
                    ("WAIT", str(len(replicas)), "100"),
                ]
                reply = _commands(primary.port, self.password, probe).split(b"\r\n")
                acked = reply[2][1:] if len(reply) > 2 else b""
                if linked and acked.isdigit() and int(acked) >= len(replicas):
                    return
            time.sleep(0.05)
        raise BoardUnavailableError(f"replicas did not catch up within {timeout}s")

    def _wait_sentinels_see_replicas(self, deadline: float) -> None:
        want = str(self.replicas)
        for sentinel in self.sentinels:
            while True:
                reply = _command(
                    sentinel.port, self.password, "SENTINEL", "MASTER", self.service
                ).split(b"\r\n")
                fields = [p.decode(errors="replace") for p in reply[2::2]]
                info = dict(zip(fields[::2], fields[1::2], strict=False))
                if info.get("num-slaves") == want:
                    break
                if time.monotonic() > deadline:
                    raise BoardUnavailableError(
                        f"sentinel does not see the replicas: {sentinel.log_tail()}"
                    )
                time.sleep(0.1)

    def pause(self, server: RedisServer) -> None:
        """SIGSTOP: the server stops applying and answering (a replica then lags)."""
        if server.process is not None:
            server.process.send_signal(signal.SIGSTOP)

    def resume(self, server: RedisServer) -> None:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)

    def promote(self, server: RedisServer) -> None:
        """Make `server` the primary by hand (REPLICAOF NO ONE) and point the other running
        servers at it: what a Sentinel does, for sets without one."""
        self.command(server, "REPLICAOF", "NO", "ONE")
        for other in self.servers:
            if other is not server and other.process is not None:
                self.command(other, "REPLICAOF", "127.0.0.1", str(server.port))

    def rejoin(self, server: RedisServer) -> None:
        """Start a stopped server as a replica of the current primary (what a Sentinel
        does to a returning old primary, only without its 8-15 s of caution)."""
        primary = self.primary()
        if primary is None:
            raise BoardUnavailableError("no primary to rejoin")
        server.start()
        self.command(server, "REPLICAOF", "127.0.0.1", str(primary.port))

    def wait_failover(self, old: RedisServer, timeout: float = 20.0) -> RedisServer:
        """Wait until the Sentinels name a primary other than `old` and it acts as one;
        returns it. Raises BoardUnavailableError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = {s.primary_port_now() for s in self.sentinels if s.process}
            if len(ports) == 1 and None not in ports and old.port not in ports:
                port = ports.pop()
                new = next((s for s in self.servers if s.port == port), None)
                if new is not None and self.role(new) == "master":
                    return new
            time.sleep(0.1)
        tails = "\n".join(s.log_tail() for s in self.sentinels)
        raise BoardUnavailableError(f"no failover within {timeout}s:\n{tails}")

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            self.resume(server)  # a stopped process would not see SIGTERM
            server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
