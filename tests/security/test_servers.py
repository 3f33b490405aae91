"""Servers this package starts require a password that never shows: not on a command line,
not in `blackboard server`'s output, not in a scenario's notes or reports. Scenario children
do not import modules planted in the current directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from blackboard.scenario.load import load_scenario
from blackboard.scenario.processes import blackboard_argv
from blackboard.scenario.system import System, credentials_env, process_specs
from blackboard.store.redact import redact_url, split_credentials
from blackboard.store.server import RedisClusterServers, RedisServer

ROOT = Path(__file__).resolve().parents[2]
UNREDACTED = re.compile(r"://[^/\s\"'@]*:(?!\*\*\*@)[^/\s\"'@]+@")
"""A URL whose user part holds anything but ``***`` as the password."""


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_an_embedded_server_refuses_clients_without_its_password() -> None:
    with RedisServer(tcp=True) as server:
        assert server.password and len(server.password) >= 16
        for password in (None, "wrong-password-guess"):
            client = redis.Redis(host="127.0.0.1", port=server.port, password=password)
            with pytest.raises(redis.AuthenticationError):
                client.ping()
            client.close()
        with redis.Redis.from_url(server.url) as client:  # the URL carries it, in-process
            assert client.ping()
        assert server.process is not None and server.password not in _cmdline(server.process.pid)
        assert Path(server.password_file).read_text().strip() == server.password
        assert Path(server.password_file).stat().st_mode & 0o777 == 0o600
        assert server.password not in server.bare_url
        assert redact_url(server.url) == f"redis://:***@127.0.0.1:{server.port}/0"
    with RedisServer(require_password=False) as open_server:  # an explicit opt-out
        assert redis.Redis(unix_socket_path=open_server.socket_path).ping()


def test_cluster_nodes_share_a_password_and_refuse_without_it() -> None:
    with RedisClusterServers(1) as cluster:
        node = cluster.nodes[0]
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=node.port).ping()
        assert node.password == cluster.password
        assert cluster.password and cluster.password not in cluster.bare_url
        assert split_credentials(cluster.url) == (cluster.bare_url, None, cluster.password)


def test_redact_url_hides_every_password_form() -> None:
    assert redact_url("redis://u:p%40ss@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("rediss+cluster://:pw@h:1") == "rediss+cluster://:***@h:1"
    assert redact_url("unix://:pw@/tmp/r.sock") == "unix://:***@/tmp/r.sock"
    assert (
        redact_url("unix:///tmp/r.sock?db=1&password=pw") == "unix:///tmp/r.sock?db=1&password=***"
    )
    assert redact_url("user:pw@host:6379") == "***@host:6379"  # not a URL: hide more
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert split_credentials("unix://u:pw@/tmp/r.sock") == ("unix:///tmp/r.sock", "u", "pw")


def test_blackboard_server_prints_no_password_and_its_exports_work(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "blackboard", "server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        exports = dict(line.removeprefix("export ").strip().split("=", 1) for line in lines)
        url = exports["BLACKBOARD_REDIS_URL"]
        password_file = Path(exports["BLACKBOARD_REDIS_PASSWORD_FILE"])
        password = password_file.read_text().strip()
        assert len(password) >= 16 and password not in "".join(lines)
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert password not in _cmdline(proc.pid)
        with redis.Redis.from_url(url, password=password) as client:
            assert client.ping()
        with redis.Redis.from_url(url) as client, pytest.raises(redis.AuthenticationError):
            client.ping()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert password not in err


def test_scenario_children_get_credentials_by_file_never_by_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLACKBOARD_REDIS_PASSWORD", "inherited-password-0123456789")
    plan = load_scenario(ROOT / "scenarios" / "support.toml")
    secret = "a-server-password-0123456789"
    url = f"redis://ops:{secret}@127.0.0.1:6390/0"
    bare, username, password = split_credentials(url)
    system = System(url, bare, username=username, password=password)
    assert secret not in system.shown_url and "***" in system.shown_url
    specs = process_specs(plan, {b.name: b.name for b in plan.boards}, system.process_url)
    assert specs and all(secret not in " ".join(s.argv) for s in specs)
    assert all(s.argv[1:3] == ["-P", "-c"] for s in specs)  # cwd kept off sys.path
    env = credentials_env(dict(os.environ), system, tmp_path)
    assert "BLACKBOARD_REDIS_PASSWORD" not in env and env["BLACKBOARD_REDIS_USERNAME"] == "ops"
    password_file = Path(env["BLACKBOARD_REDIS_PASSWORD_FILE"])
    assert password_file.read_text().strip() == secret
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert secret not in " ".join(env.values())


def test_a_child_does_not_import_a_module_planted_in_the_current_directory(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "planted-was-imported"
    (tmp_path / "msgpack.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('yes')\n"
    )
    plain = subprocess.run(
        [sys.executable, "-c", "import msgpack"], cwd=tmp_path, capture_output=True, check=False
    )
    assert plain.returncode == 0 and marker.exists()  # the attack works on a plain -c child
    marker.unlink()
    child = subprocess.run(
        blackboard_argv("--help"), cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert child.returncode == 0, child.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_a_scenario_run_on_a_server_with_a_password_never_shows_it(
    single_server: RedisServer, tmp_path: Path
) -> None:
    assert single_server.password
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("BLACKBOARD_REDIS_URL", None)
    res = subprocess.run(
        [sys.executable, "-m", "blackboard", "run", "scenarios/support.toml",
         "--redis", single_server.url, "--items", "10", "--keep-logs",
         "--report", str(out_json), "--report", str(out_html)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = out_json.read_text()
    shown = [res.stdout, res.stderr, report, out_html.read_text()]
    logs = Path(str(json.loads(report)["logs"]))
    shown += [p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()]
    for text in shown:
        assert single_server.password not in text
        assert not UNREDACTED.search(text), UNREDACTED.search(text)
    assert ":***@" in report
    assert not (logs / "redis.password").exists()  # removed at the end of the run
