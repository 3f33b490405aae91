"""Rule key patterns and value paths: how the controller reads them, and the checks a policy
runs on them when it is validated (pure; bottom layer, imports nothing of the package).

The controller compiles a rule's ``on`` pattern with `compile_pattern` and follows a
condition's dotted path with list indexes read by `path_index`. The policy model validates
with `check_rule_pattern` and `check_path`, which use the very same functions, so a document
that `policy apply` accepts can never fail later inside the controller.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

__all__ = ["check_path", "check_rule_pattern", "compile_pattern", "path_index"]

_POSITION = re.compile(r" at position \d+$")


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex for a rule pattern: ``**`` any characters, ``*`` any but ``/``, ``?`` one
    character but ``/``, ``[...]`` a character class; each wildcard is a group.
    Raises re.error for a class the regex engine refuses (``[z-a]``, ``[]``)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append("(.*)")
            i += 2
            continue
        if c == "*":
            out.append("([^/]*)")
        elif c == "?":
            out.append("([^/])")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                # a '[' inside a class is a literal, as in a glob (unescaped, Python warns)
                body = pattern[i + 1 : end].replace("\\", "\\\\").replace("[", "\\[")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"([{body}])")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def check_rule_pattern(pattern: str) -> str:
    """Return `pattern` if the controller can compile it; raises ValueError naming the
    problem (a reversed range, an empty class, an ambiguous ``--`` in a class)."""
    try:
        with warnings.catch_warnings():
            # a set operation the regex engine only warns about today is refused now
            warnings.simplefilter("error", FutureWarning)
            compile_pattern(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r}: {exc.msg}") from None
    except FutureWarning as exc:
        raise ValueError(f"pattern {pattern!r}: {_POSITION.sub('', str(exc)).lower()}") from None
    return pattern


def path_index(part: str) -> int | None:
    """The list index a path part names (ASCII digits only), or None."""
    if part.isascii() and part.isdigit():
        return int(part)
    return None


def check_path(path: str) -> str:
    """Return the dotted value path `path` ('' = the whole value) if every part is usable:
    no empty part, and digits only as ASCII list indexes. Raises ValueError."""
    if not path:
        return path
    for part in path.split("."):
        if not part:
            raise ValueError(f"path {path!r} has an empty part (a leading, trailing or '..' dot)")
        if part.isdigit() and path_index(part) is None:
            raise ValueError(
                f"path {path!r}: {part!r} is not a list index; indexes are ASCII digits 0-9"
            )
    return path
