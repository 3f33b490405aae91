"""Schemas: pydantic models bound to key patterns (no I/O; imports errors, keys).

`board.schema("ticket/*", Ticket)` binds a model; writes to matching keys are validated and
stored as the model's JSON-mode dump, reads come back as model instances. A model may set
``__schema_version__`` (default 1); name and version are stored with every entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import pydantic

from blackboard.errors import CorruptEntryError, ValidationError
from blackboard.keys import check_pattern


@dataclass(frozen=True, slots=True)
class SchemaBinding:
    pattern: str
    model: type[pydantic.BaseModel]
    name: str
    version: int


def _errors(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]


class SchemaRegistry:
    """Key pattern -> model; the latest binding of an identical pattern replaces the earlier."""

    def __init__(self) -> None:
        self._bindings: list[SchemaBinding] = []
        self._cache: dict[str, SchemaBinding | None] = {}

    def bind(
        self, pattern: str, model: type[pydantic.BaseModel], name: str | None = None
    ) -> SchemaBinding:
        """Bind `model` to keys matching `pattern`; raises InvalidKeyError, TypeError."""
        check_pattern(pattern)
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            raise TypeError(f"schema for {pattern!r} must be a pydantic model class")
        version = int(getattr(model, "__schema_version__", 1))
        binding = SchemaBinding(pattern, model, name or model.__name__, version)
        self._bindings = [b for b in self._bindings if b.pattern != pattern] + [binding]
        self._cache.clear()
        return binding

    def __bool__(self) -> bool:
        return bool(self._bindings)

    def find(self, key: str) -> SchemaBinding | None:
        """The binding for `key`, most specific (longest) pattern first, or None."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        for b in sorted(self._bindings, key=lambda b: len(b.pattern), reverse=True):
            if fnmatchcase(key, b.pattern):
                found = b
                break
        if len(self._cache) < 100_000:
            self._cache[key] = found
        return found

    @staticmethod
    def dump(key: str, binding: SchemaBinding, value: Any) -> Any:
        """Validated, encodable data for `value`; raises ValidationError naming the fields."""
        try:
            if not isinstance(value, binding.model):
                value = binding.model.model_validate(value)
            return value.model_dump(mode="json")
        except pydantic.ValidationError as exc:
            raise ValidationError(key, binding.name, _errors(exc)) from None

    @staticmethod
    def prepare(key: str, binding: SchemaBinding, value: Any) -> tuple[Any, pydantic.BaseModel]:
        """(data to store, the model a reader will get back) for a write of `value`: the
        writer is handed what `get()` returns, not the object it passed in.
        Raises ValidationError naming the fields."""
        data = SchemaRegistry.dump(key, binding, value)
        return data, SchemaRegistry.load(key, binding, data)

    @staticmethod
    def load(key: str, binding: SchemaBinding, data: Any) -> pydantic.BaseModel:
        """A model instance from stored data; raises CorruptEntryError if it no longer fits."""
        try:
            return binding.model.model_validate(data)
        except pydantic.ValidationError as exc:
            detail = "; ".join(f"{f}: {m}" for f, m in _errors(exc))
            raise CorruptEntryError(
                key, f"stored value does not match {binding.name}: {detail}"
            ) from None
