"""The agent base class users subclass, and loading one from ``path.py:Class`` (runtime layer;
imports activation, errors, policy).

    class Triage(blackboard.Agent):
        role = "triage"

        async def handle(self, activation, board):
            ticket = activation.value
            await board.put(f"{activation.key}/triage", {"category": "billing"})

`handle` may also be a plain `def` (it then runs in a worker thread with a blocking board).
Options given on the command line (``-o seed=7``) arrive as keyword arguments.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, ClassVar

from blackboard.control.activation import Activation
from blackboard.control.policy import check_role
from blackboard.errors import AgentLoadError

__all__ = ["Agent", "load_agent"]


class Agent(abc.ABC):
    """A knowledge source: a role and a handler. Subclasses set `role` and define `handle`.

    `concurrency` is how many activations one process runs at once (the command line may
    override it); `deadline`, when set, caps the time a handler may take below what the
    policy grants (and is the harness's deadline). `setup`/`teardown` run once per process
    around the activations."""

    role: ClassVar[str] = ""
    concurrency: ClassVar[int] = 1
    deadline: ClassVar[float | None] = None

    def __init__(self, **options: Any) -> None:
        self.options = options

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.role:
            try:
                check_role(cls.role)
            except ValueError as exc:
                raise TypeError(f"{cls.__name__}.role: {exc}") from None

    async def setup(self, board: Any) -> None:  # noqa: B027 -- optional hook, empty by design
        """Called once before the first activation (connections, models, caches)."""

    async def teardown(self) -> None:  # noqa: B027 -- optional hook, empty by design
        """Called once when the agent stops."""

    @abc.abstractmethod
    def handle(self, activation: Activation, board: Any) -> Any:
        """Do the work of one activation; override with `async def` or `def`. A subclass
        without it cannot be instantiated, and `load_agent` refuses it by name."""

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handle)


def load_agent(spec: str) -> type[Agent]:
    """The Agent subclass named by ``path/to/file.py:Class`` or ``package.module:Class``.
    Raises AgentLoadError saying what is wrong."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise AgentLoadError(f"{spec!r}: give the agent as path.py:Class or module:Class")
    try:
        if path.endswith(".py") or "/" in path:
            file = Path(path)
            if not file.is_file():
                raise AgentLoadError(f"{spec!r}: no such file {path}")
            mod_name = f"_blackboard_agent_{file.stem}_{abs(hash(str(file.resolve())))}"
            module = sys.modules.get(mod_name)
            if module is None:
                loader_spec = importlib.util.spec_from_file_location(mod_name, file)
                if loader_spec is None or loader_spec.loader is None:
                    raise AgentLoadError(f"{spec!r}: cannot load {path}")
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[mod_name] = module
                loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(path)
    except AgentLoadError:
        raise
    except Exception as exc:
        raise AgentLoadError(f"{spec!r}: importing {path} failed: {exc!r}") from exc
    cls = getattr(module, name, None)
    if cls is None:
        raise AgentLoadError(f"{spec!r}: {path} has no {name}")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise AgentLoadError(f"{spec!r}: {name} is not a blackboard.Agent subclass")
    if not cls.role:
        raise AgentLoadError(f"{spec!r}: {name} sets no role")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise AgentLoadError(f"{spec!r}: {name} does not define {missing}()")
    return cls
