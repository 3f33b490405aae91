"""The Lua scripts of blackboard and how they are run (bottom layer: imports errors only).

Each script lives in ``blackboard/lua/<name>.lua`` with a header giving its KEYS, ARGV and
return value. Scripts run with EVALSHA; a server that lost its script cache (restart,
failover, a fresh cluster node) answers NOSCRIPT, and the script is sent again in full with
EVAL: safe, because NOSCRIPT means nothing ran.
"""

from __future__ import annotations

import hashlib
import weakref
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

_NO_READONLY_EVAL: weakref.WeakSet[Any] = weakref.WeakSet()  # clients without EVALSHA_RO


def _lua(name: str) -> str:
    return resources.files("blackboard").joinpath(f"lua/{name}.lua").read_text()


class Script:
    """A Lua script known by its SHA1; `source` is the text sent on NOSCRIPT."""

    __slots__ = ("eval", "evalsha", "name", "sha", "source")

    def __init__(
        self, name: str, *, readonly: bool = False, preamble: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        # a read-only script runs with EVALSHA_RO so that an ACL user with read-only access
        # to its keys may run it (EVALSHA declares its keys read-write)
        self.evalsha = "EVALSHA_RO" if readonly else "EVALSHA"
        self.eval = "EVAL_RO" if readonly else "EVAL"
        # `preamble` names lua/ files whose functions this script calls; they are prepended
        self.source = "".join(_lua(part) for part in (*preamble, name))
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, redis: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script; raises redis errors unchanged (callers wrap them).

        On NOSCRIPT the full source is sent once with EVAL, which also caches it; EVAL is
        routed by its keys like EVALSHA, so this works per node in a cluster."""
        evalsha, eval_ = self.evalsha, self.eval
        if redis in _NO_READONLY_EVAL:
            evalsha, eval_ = "EVALSHA", "EVAL"
        try:
            return await redis.execute_command(evalsha, self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.execute_command(eval_, self.source, len(keys), *keys, *args)
        except ResponseError as exc:
            # EVALSHA_RO is Redis >= 7.0; older servers and fakeredis only know EVALSHA
            if evalsha == "EVALSHA" or "unknown command" not in str(exc).lower():
                raise
            _NO_READONLY_EVAL.add(redis)
            return await self(redis, keys, args)

    def queue(self, pipe: Any, keys: list[str], args: list[Any], *, full: bool = False) -> None:
        """Queue the script on a pipeline; `full=True` sends the source (after NOSCRIPT)."""
        if full:
            pipe.execute_command(self.eval, self.source, len(keys), *keys, *args)
        else:
            pipe.execute_command(self.evalsha, self.sha, len(keys), *keys, *args)

    async def ensure_loaded(self, redis: Any) -> None:
        await redis.script_load(self.source)


COMMIT = Script("commit", preamble=("preamble",))
READ = Script("read", readonly=True)
PROPOSE = Script("propose", preamble=("preamble",))
MERGE = Script("merge")
COMPACTOR_LEASE = Script("compactor_lease")
TRIM_LOG = Script("trim_log")
TRIM_HISTORY = Script("trim_history")
ALL: tuple[Script, ...] = (COMMIT, READ, PROPOSE, MERGE, COMPACTOR_LEASE, TRIM_LOG, TRIM_HISTORY)

# controller and agent runtime (controller.py, lease.py, runtime.py)
LEASE = Script("lease")
CONTROLLER_READ = Script("controller_read")
GRANT = Script("grant")
FINISH = Script("finish")
RENEW_CLAIMS = Script("renew_claims")
ALL = (*ALL, LEASE, CONTROLLER_READ, GRANT, FINISH, RENEW_CLAIMS)

# compactor retention of activations (activation_sweep.py)
SWEEP_ACTIVATIONS = Script("sweep_activations")
TRIM_STREAM = Script("trim_stream")
ALL = (*ALL, SWEEP_ACTIVATIONS, TRIM_STREAM)
