"""The TUI's pure parts: display functions and the log window (no server, no terminal)."""

from __future__ import annotations

from blackboard.store.entry import Change
from blackboard.tui.display import age, change_text, diff_lines, pretty, preview
from blackboard.tui.log_window import LogWindow


def change(rev: int, key: str = "k", value: object = 1, kind: str = "put") -> Change:
    return Change(rev, key, rev, kind, value, "w", 1_000 * rev)


def test_age_is_short() -> None:
    assert [age(x) for x in (-5, 850, 12_400, 300_000, 7_200_000, 3 * 86_400_000)] == [
        "0ms", "850ms", "12s", "5m", "2h", "3d",
    ]  # fmt: skip


def test_preview_cuts_and_marks_deleted() -> None:
    assert preview({"a": 1}) == '{"a":1}'
    assert preview("x" * 100, 10) == '"xxxxxxxx…'
    assert len(preview(list(range(100)), 20)) == 20
    assert preview(None, deleted=True) == "(deleted)"
    assert preview(b"\x00\x01") == '"0001"'


def test_diff_lines_between_values() -> None:
    assert diff_lines({"a": 1}, {"a": 1}, "v1", "v2") == []
    lines = diff_lines({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1, 2]}, "v1", "v2")
    assert lines[:2] == ["--- v1", "+++ v2"]
    assert '-  "a": 1,' in lines and '+  "a": 2,' in lines
    assert pretty({"b": 1, "a": 2}).index('"a"') < pretty({"b": 1, "a": 2}).index('"b"')


def test_change_text_is_searchable() -> None:
    c = Change(7, "ticket/1", 2, "put", {"subject": "Refund"}, "triage@h:1", 0, "triage:ab")
    text = change_text(c)
    assert "ticket/1" in text and "refund" in text and "triage:ab" in text


def test_log_window_newest_first_and_capacity() -> None:
    w = LogWindow(capacity=3)
    w.extend([change(i) for i in range(1, 6)])
    assert len(w) == 3
    assert [w.change_at(i).revision for i in range(3)] == [5, 4, 3]  # type: ignore[union-attr]
    assert w.change_at(3) is None
    assert w.cells(0) is not None and w.cells(0)[0] == "5"  # type: ignore[index]


def test_log_window_pause_holds_changes() -> None:
    w = LogWindow()
    w.extend([change(1)])
    w.pause()
    w.extend([change(2), change(3)])
    assert len(w) == 1 and w.held == 2
    w.resume()
    assert len(w) == 3 and w.held == 0
    assert w.change_at(0).revision == 3  # type: ignore[union-attr]


def test_log_window_search_follows_new_changes_and_trimming() -> None:
    w = LogWindow(capacity=4)
    w.extend([change(1, "ticket/1"), change(2, "user/1"), change(3, "ticket/2")])
    assert w.search("TICKET") == 2
    assert [w.change_at(i).key for i in range(len(w))] == ["ticket/2", "ticket/1"]  # type: ignore[union-attr]
    w.extend([change(4, "ticket/3"), change(5, "user/2"), change(6, "user/3")])
    # capacity 4: revisions 3..6 are kept, of which 3 and 4 match
    assert [w.change_at(i).revision for i in range(len(w))] == [4, 3]  # type: ignore[union-attr]
    assert w.search("") == 4 and len(w) == 4


def test_log_window_prepend_older() -> None:
    w = LogWindow(capacity=5)
    w.extend([change(4), change(5)])
    assert w.oldest_revision == 4
    assert w.prepend([change(1), change(2), change(3)]) == 3
    assert [w.change_at(i).revision for i in range(5)] == [5, 4, 3, 2, 1]  # type: ignore[union-attr]
    assert w.prepend([change(0)]) == 0  # full
    w.search("put")
    assert len(w) == 5
