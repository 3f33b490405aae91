"""Schemas: pydantic models bound to key patterns (no I/O; imports errors, keys).

`board.schema("ticket/*", Ticket)` binds a model; writes to matching keys are validated and
stored as the model's JSON-mode dump, reads come back as model instances. A model may set
``__schema_version__`` (default 1); name and version are stored with every entry.

When the model moves on, entries written with an older version are upgraded on read by the
model's migrations, one per version: ``__schema_migrations__ = {1: v1_to_v2, 2: v2_to_v3}``,
each a function from the stored data of that version to the data of the next. An old entry
with no migration is still accepted when it validates as it is; otherwise, and for an entry
written by a newer model, the read raises `SchemaVersionError` naming both versions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import pydantic

from blackboard.errors import BlackboardError, CorruptEntryError, ValidationError
from blackboard.store.keys import check_pattern

__all__ = ["Migration", "SchemaBinding", "SchemaRegistry", "SchemaVersionError"]

Migration = Callable[[Any], Any]
"""Stored data of one schema version -> the data of the next version."""


class SchemaVersionError(CorruptEntryError):
    """An entry was written with version `stored` of its schema and cannot be read with the
    reader's version `expected`: add a migration (``__schema_migrations__``) from `stored`,
    or, when `stored` is newer, upgrade the reader. Nothing is changed on the board."""

    def __init__(self, key: str, schema: str, stored: int, expected: int, reason: str) -> None:
        self.key = key
        self.reason = reason
        self.schema = schema
        self.stored = stored
        self.expected = expected
        BlackboardError.__init__(
            self,
            f"schema version mismatch on {key!r}: the entry has schema version {stored}, "
            f"this reader's {schema} is version {expected}: {reason}",
        )


@dataclass(frozen=True, slots=True)
class SchemaBinding:
    pattern: str
    model: type[pydantic.BaseModel]
    name: str
    version: int
    migrations: Mapping[int, Migration] = field(default_factory=dict)
    """version n -> the function that turns data of version n into data of version n + 1"""


def _migrations(model: type[pydantic.BaseModel], version: int) -> dict[int, Migration]:
    found = getattr(model, "__schema_migrations__", None) or {}
    if not isinstance(found, Mapping):
        raise TypeError(f"{model.__name__}.__schema_migrations__ must map a version to a function")
    out: dict[int, Migration] = {}
    for v, fn in found.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < version:
            raise TypeError(
                f"{model.__name__}.__schema_migrations__: {v!r} is not a version below "
                f"{version} (a migration upgrades version n to n + 1)"
            )
        if not callable(fn):
            raise TypeError(f"{model.__name__}.__schema_migrations__[{v}] is not callable")
        out[v] = fn
    return out


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
        """Bind `model` to keys matching `pattern`; raises InvalidKeyError, TypeError (not a
        model, or migrations that are not a map of versions below the model's to functions)."""
        check_pattern(pattern)
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            raise TypeError(f"schema for {pattern!r} must be a pydantic model class")
        version = int(getattr(model, "__schema_version__", 1))
        migrations = _migrations(model, version)
        binding = SchemaBinding(pattern, model, name or model.__name__, version, migrations)
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
    def load(
        key: str, binding: SchemaBinding, data: Any, stored_version: int | None = None
    ) -> pydantic.BaseModel:
        """A model instance from stored data written with schema version `stored_version`
        (None: unknown, or written without a schema), upgraded by the model's migrations when
        older. Raises SchemaVersionError when the versions differ and the data cannot be made
        to fit, CorruptEntryError when the data does not fit its own version."""
        stored = stored_version
        if isinstance(stored, bool) or not isinstance(stored, int) or stored == binding.version:
            stored = None
        step = stored
        if stored is not None and stored < binding.version:
            while step is not None and step < binding.version and step in binding.migrations:
                try:
                    data = binding.migrations[step](data)
                except Exception as exc:
                    raise SchemaVersionError(
                        key, binding.name, stored, binding.version,
                        f"the migration from v{step} failed: {exc!r}",
                    ) from exc  # fmt: skip
                step += 1
        try:
            return binding.model.model_validate(data)
        except pydantic.ValidationError as exc:
            detail = "; ".join(f"{f}: {m}" for f, m in _errors(exc))
            if stored is None or step is None:
                raise CorruptEntryError(
                    key, f"stored value does not match {binding.name}: {detail}"
                ) from None
            if stored > binding.version:
                how = "the entry is newer than this reader's model: upgrade the reader"
            elif step < binding.version:
                how = (
                    f"no migration from v{step} (set {binding.model.__name__}."
                    f"__schema_migrations__ = {{{step}: <v{step} data -> v{step + 1} data>}})"
                )
            else:
                how = "the migrated value does not validate"
            raise SchemaVersionError(
                key, binding.name, stored, binding.version, f"{how}: {detail}"
            ) from None
