"""blackboard/errors.py: `__all__`, the classes and the tree drawn in the module docstring
agree, so that the documented tree cannot go stale."""

from __future__ import annotations

import inspect
import re

import pytest

from blackboard import errors
from blackboard.errors import BlackboardError

_NODE = re.compile(r"^(?P<indent> {4}(?:[│ ] {3}|[├└]── )*)(?P<name>[A-Z]\w*)(?:\s|$)")


def documented_tree(doc: str) -> dict[str, str | None]:
    """Class name -> parent name from the docstring's drawing (the root's parent is None).
    Raises ValueError for a line of the drawing that does not parse."""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    parents: dict[str, str | None] = {}
    stack: list[str] = []  # stack[d] is the latest class at depth d
    for line in block.splitlines():
        if not line.strip() or line.lstrip(" │")[:1].islower():
            continue  # a description's continuation line (it starts in lower case)
        m = _NODE.match(line)
        if m is None:
            raise ValueError(f"cannot parse the error tree line {line!r}")
        depth = (len(m["indent"]) - 4) // 4
        if depth > len(stack):
            raise ValueError(f"{m['name']} is indented under nothing")
        del stack[depth:]
        parents[m["name"]] = stack[-1] if stack else None
        stack.append(m["name"])
    return parents


def defined_errors() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BlackboardError)
        and cls.__module__ == errors.__name__
    }


def test_every_exported_name_is_a_blackboard_error() -> None:
    assert len(errors.__all__) == len(set(errors.__all__)), "a name is exported twice"
    for name in errors.__all__:
        cls = getattr(errors, name, None)
        assert inspect.isclass(cls), f"errors.__all__ names {name!r}, which is not a class"
        assert issubclass(cls, BlackboardError), f"{name} is not a BlackboardError"


def test_every_error_defined_in_the_module_is_exported() -> None:
    assert set(defined_errors()) == set(errors.__all__)


def test_the_docstring_tree_is_the_class_hierarchy() -> None:
    assert errors.__doc__ is not None
    documented = documented_tree(errors.__doc__)
    actual: dict[str, str | None] = {}
    for name, cls in defined_errors().items():
        bases = [b.__name__ for b in cls.__bases__ if issubclass(b, BlackboardError)]
        assert len(bases) <= 1, f"{name} derives from several blackboard errors: {bases}"
        actual[name] = bases[0] if bases else None
    assert documented == actual


def test_the_tree_parser_reads_depth_and_refuses_what_it_cannot_read() -> None:
    doc = (
        "x::\n\n    Root\n    ├── A          text\n    │   └── B      text\n"
        "    │              more text\n    └── C\n\nafter"
    )
    assert documented_tree(doc) == {"Root": None, "A": "Root", "B": "A", "C": "Root"}
    with pytest.raises(ValueError, match="cannot parse"):
        documented_tree("x::\n\n    Root\n    ├─ A\n\n")
    with pytest.raises(ValueError, match="indented under nothing"):
        documented_tree("x::\n\n    Root\n    │   │   └── A\n\n")


def test_compatibility_bases_are_kept() -> None:
    assert issubclass(errors.EscalationNotFoundError, LookupError)
    assert issubclass(errors.StaleLeaseError, errors.LeaseLostError)
    err = errors.StaleLeaseError("bb:{b}:ctl:lease", "7:other")
    assert (err.key, err.found, err.fence) == ("bb:{b}:ctl:lease", "7:other", "bb:{b}:ctl:lease")
    assert "held by '7:other'" in str(err)
    assert str(errors.EscalationNotFoundError("k/1")) == "no merge escalation for 'k/1'"
