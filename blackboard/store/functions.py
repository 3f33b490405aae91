"""The server-side code of blackboard: one Redis Functions library and its functions (store
layer: imports transport, which sends every call).

Each function's source lives in ``blackboard/store/lua/<name>.lua`` with a header giving its KEYS,
ARGV and return value; ``lua/preamble.lua`` and ``lua/reducers.lua`` hold helpers shared by
all of them, defined once at library level. `LIBRARY` is
the text given to ``FUNCTION LOAD``: the preamble once at library level, then every file
wrapped as ``redis.register_function{function_name='bb_<version>_<name>', ...}``. `VERSION`
is a hash of that text, so a client only ever calls the code it was written for; libraries
of other versions may sit beside it on the same server (rolling upgrades).

Why functions and not EVAL: role users run untrusted model output with their credentials, so
they get ``FCALL``/``FCALL_RO`` and no EVAL/SCRIPT at all (no busy loops, no code of theirs
in the server). The deployer loads the library (`blackboard deploy`, `acl generate --apply`,
or the first admin connection: a client whose user may ``FUNCTION LOAD`` loads a missing
library itself, which keeps embedded servers and tests simple). A role client that finds it
missing raises `LibraryMissingError` naming the fix.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from redis.exceptions import ResponseError

from blackboard.store import transport

# (file name, read-only) in library order; read-only functions carry the 'no-writes' flag
# and run with FCALL_RO, so a user with read-only access to their keys may call them
_FUNCTIONS: tuple[tuple[str, bool], ...] = (
    ("commit", False),
    ("read", True),
    ("log_read", True),
    ("log_check", True),
    ("propose", False),
    ("merge", False),
    ("trim_log", False),
    ("trim_history", False),
    ("lease", False),
    ("controller_read", False),
    ("grant", False),
    ("finish", False),
    ("renew_claims", False),
    ("sweep_activations", False),
    ("trim_stream", False),
)


def _lua(name: str) -> str:
    return resources.files("blackboard.store").joinpath(f"lua/{name}.lua").read_text()


def _library() -> tuple[str, str]:
    body = [_lua("preamble"), _lua("reducers")]  # library level: defined once, not per call
    for name, readonly in _FUNCTIONS:
        flags = ", flags={'no-writes'}" if readonly else ""
        body.append(
            f"redis.register_function{{function_name='bb_@V@_{name}', "
            f"callback=function(KEYS, ARGV)\n{_lua(name)}\nend{flags}}}\n"
        )
    body.append(
        "redis.register_function{function_name='bb_@V@_version', "
        "callback=function() return '@V@' end, flags={'no-writes'}}\n"
    )
    text = "\n".join(body)
    version = hashlib.sha1(text.encode()).hexdigest()[:12]
    return version, f"#!lua name=blackboard_{version}\n" + text.replace("@V@", version)


VERSION, LIBRARY = _library()


LIB = transport.Library(VERSION, LIBRARY)
is_missing = transport.is_missing


async def load_library(redis: Any) -> None:
    """FUNCTION LOAD this library on the server (every primary of a cluster), replacing a
    copy of the same version. Raises LibraryMissingError when this user may not load code."""
    await transport.load_library(redis, LIB)


async def check_library(redis: Any, node: Any = None) -> None:
    """Make sure this client's library is on the server: loads it when missing and allowed.
    Raises LibraryMissingError, or redis errors unchanged."""
    extra = {"target_nodes": node} if node is not None else {}
    try:
        await redis.execute_command("FCALL_RO", f"bb_{VERSION}_version", 0, **extra)
    except ResponseError as exc:
        if not is_missing(exc):
            raise
        await load_library(redis)


class Script:
    """One function of the library; `fname` is its name on the server."""

    __slots__ = ("fcall", "fname", "name")

    def __init__(self, name: str, *, readonly: bool = False) -> None:
        self.name = name
        self.fname = f"bb_{VERSION}_{name}"
        # a read-only function runs with FCALL_RO so that an ACL user with read-only access
        # to its keys may call it (FCALL declares its keys read-write)
        self.fcall = "FCALL_RO" if readonly else "FCALL"

    @property
    def library(self) -> transport.Library:
        return LIB

    async def __call__(self, redis: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the function (`transport.call`); raises redis errors unchanged (callers wrap
        them), and LibraryMissingError when the server lacks the library and this user may
        not load it."""
        return await transport.call(redis, self, keys, args)

    def command(self, keys: list[str], args: list[Any]) -> tuple[Any, ...]:
        """The command as a tuple of arguments (for packed and pipelined sends)."""
        return (self.fcall, self.fname, len(keys), *keys, *args)


async def pipelined(redis: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send raw commands (`Script.command()` tuples among them) in one round trip
    (`transport.send`); results in order, a ResponseError in place of a refused one."""
    return await transport.send(redis, commands, LIB)


COMMIT = Script("commit")
READ = Script("read", readonly=True)
LOG_READ = Script("log_read", readonly=True)
LOG_CHECK = Script("log_check", readonly=True)
PROPOSE = Script("propose")
MERGE = Script("merge")
TRIM_LOG = Script("trim_log")
TRIM_HISTORY = Script("trim_history")

# leases (lease.py: the controller's and the compactor's)
LEASE = Script("lease")

# controller and agent runtime (controller.py, agent_runtime.py)
CONTROLLER_READ = Script("controller_read")
GRANT = Script("grant")
FINISH = Script("finish")
RENEW_CLAIMS = Script("renew_claims")

# compactor retention of activations (activation_sweep.py)
SWEEP_ACTIVATIONS = Script("sweep_activations")
TRIM_STREAM = Script("trim_stream")

ALL: tuple[Script, ...] = (
    COMMIT, READ, LOG_READ, LOG_CHECK, PROPOSE, MERGE, TRIM_LOG, TRIM_HISTORY,
    LEASE, CONTROLLER_READ, GRANT, FINISH, RENEW_CLAIMS, SWEEP_ACTIVATIONS, TRIM_STREAM,
)  # fmt: skip
