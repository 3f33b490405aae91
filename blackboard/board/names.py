"""What a valid key, key pattern and board name is (board layer; imports store.keys).

The rules live in `blackboard.store.keys`, next to the Redis key names they protect; this
module is their public face. The edges (CLI, TUI, scenario runner) check the names a user
gives them here, because they may not import `store.keys` (an import-linter contract keeps
the storage layout private to the layers below them).
"""

from __future__ import annotations

from blackboard.store.keys import check_board, check_key, check_pattern

__all__ = ["check_board", "check_key", "check_pattern"]
