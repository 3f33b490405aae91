"""The public API is exactly what `blackboard.__all__` lists (after httpx's test)."""

from __future__ import annotations

import types

import blackboard


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(blackboard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(blackboard.__all__) == public | {"__version__"}
    assert blackboard.__all__ == sorted(blackboard.__all__)
    assert len(set(blackboard.__all__)) == len(blackboard.__all__)


def test_every_exported_name_exists_and_errors_share_one_root() -> None:
    for name in blackboard.__all__:
        value = getattr(blackboard, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, blackboard.BlackboardError), name
    assert isinstance(blackboard.__version__, str)
