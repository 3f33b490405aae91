"""The compactor's allow-list of custom merge functions (compaction layer; imports merge and
errors only).

A policy's ``[[merge]]`` table with ``strategy = "custom"`` only *names* its function
(``function = "longest_summary"``); a policy is data that any holder of the policy key can
write, so it never says which code runs. Whoever runs the compactor decides that:

- entry points of installed packages in group ``blackboard.merge_functions``
  (``[project.entry-points."blackboard.merge_functions"] longest_summary = "pkg.mod:fn"``);
- an explicit mapping ``name -> "package.module:function"`` (``BLACKBOARD_MERGE_FUNCTIONS``,
  ``blackboard compactor --merge-function name=package.module:function``) or, in code,
  ``name -> callable``; these win over an entry point of the same name.

`MergeFunctions.resolve` imports only what this configuration points at, once per name; a
name on neither list raises `MergePolicyError`, which the compactor turns into an
escalation of the entry with that reason.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from blackboard.compaction.merge import FUNCTION_NAME, CustomFunction
from blackboard.errors import MergePolicyError

__all__ = ["ENTRY_POINT_GROUP", "MergeFunctions", "parse_assignment"]

ENTRY_POINT_GROUP = "blackboard.merge_functions"
_IDENT = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_TARGET = re.compile(f"{_IDENT}:{_IDENT}")
_WHERE = (
    f"the compactor's allow-list (--merge-function, BLACKBOARD_MERGE_FUNCTIONS, or entry "
    f"points in group {ENTRY_POINT_GROUP!r})"
)


def parse_assignment(text: str) -> tuple[str, str]:
    """``name=package.module:function`` -> (name, target); raises MergePolicyError."""
    name, sep, target = text.partition("=")
    name, target = name.strip(), target.strip()
    if not sep:
        raise MergePolicyError(f"merge function {text!r}: use name=package.module:function")
    _check(name, target)
    return name, target


def _check(name: str, target: str) -> None:
    if not FUNCTION_NAME.fullmatch(name):
        raise MergePolicyError(
            f"merge function name {name!r} is not a plain name (letters, digits, _ . -)"
        )
    if not _TARGET.fullmatch(target):
        raise MergePolicyError(
            f"merge function {name!r}: {target!r} is not package.module:function"
        )


def _import(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    fn: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        fn = getattr(fn, part)
    return fn


class MergeFunctions:
    """Names a policy may give a custom merge rule, and the code each one runs.

    `given`: name -> ``"package.module:function"`` or a callable; checked here (raises
    MergePolicyError for a bad name or target), imported on first use. `use_entry_points`:
    also allow the entry points of group ``blackboard.merge_functions``."""

    def __init__(
        self,
        given: Mapping[str, str | CustomFunction] | None = None,
        *,
        use_entry_points: bool = True,
    ) -> None:
        self._given: dict[str, str | CustomFunction] = {}
        for name, target in (given or {}).items():
            if isinstance(target, str):
                _check(name, target)
            elif not FUNCTION_NAME.fullmatch(name) or not callable(target):
                raise MergePolicyError(
                    f"merge function {name!r}: needs a plain name and a callable"
                )
            self._given[name] = target
        self._use_entry_points = use_entry_points
        self._entry_points: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, CustomFunction] = {}

    def _points(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            if self._use_entry_points:
                for point in entry_points(group=ENTRY_POINT_GROUP):
                    found.setdefault(point.name, point)
            self._entry_points = found
        return self._entry_points

    def names(self) -> list[str]:
        """Every name allowed, sorted."""
        return sorted({*self._given, *self._points()})

    def allows(self, name: str) -> bool:
        return name in self._given or name in self._points()

    def describe(self, name: str) -> str:
        """Where `name` points (for logs): the target, or the entry point's value."""
        target = self._given.get(name)
        if isinstance(target, str):
            return target
        if target is not None:
            return getattr(target, "__qualname__", repr(target))
        point = self._points().get(name)
        return f"entry point {point.value}" if point is not None else "not allowed"

    def resolve(self, name: str) -> CustomFunction:
        """The function allowed under `name`, imported at most once. Raises MergePolicyError
        when `name` is not on the allow-list (nothing is imported) or its code cannot be
        loaded."""
        fn = self._loaded.get(name)
        if fn is not None:
            return fn
        if not FUNCTION_NAME.fullmatch(name) or not self.allows(name):
            raise MergePolicyError(
                f"merge function {name!r} is not on {_WHERE}: nothing was imported"
            )
        target = self._given.get(name)
        try:
            if target is None:
                loaded = self._points()[name].load()
            elif isinstance(target, str):
                loaded = _import(target)
            else:
                loaded = target
        except Exception as exc:  # any failure to load allowed code is reported, not raised
            raise MergePolicyError(
                f"merge function {name!r} ({self.describe(name)}) cannot be loaded: {exc}"
            ) from None
        if not callable(loaded):
            raise MergePolicyError(
                f"merge function {name!r} ({self.describe(name)}) is not callable"
            )
        self._loaded[name] = loaded
        return self._loaded[name]
