"""The log view's window on the change log: recent changes, pausable and searchable (no I/O,
no textual; imports the engine's Change and `display`).

The window keeps the newest `capacity` changes. While paused, arriving changes are held
back (and counted) so the rows under the reader's eyes do not move; resuming shows them.
A search keeps the positions of the matching changes, updated as changes arrive. Rows are
newest first. It is a `RowSource` for `RowTable`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from blackboard.store.entry import Change
from blackboard.tui.display import age, change_text, preview

__all__ = ["LogWindow"]


class LogWindow:
    """The newest changes of a board, newest first."""

    def __init__(self, capacity: int = 20_000, clock: Callable[[], float] | None = None) -> None:
        self.capacity = capacity
        self.clock = clock
        self._changes: deque[Change] = deque(maxlen=capacity)
        self._texts: deque[str] = deque(maxlen=capacity)
        self._held: list[Change] = []
        self._dropped = 0  # changes pushed out of the window (for match positions)
        self._matches: list[int] = []  # absolute positions of matching changes
        self.query = ""
        self.paused = False

    # -- content -----------------------------------------------------------------------------

    @property
    def held(self) -> int:
        """Changes that arrived while paused."""
        return len(self._held)

    @property
    def oldest_revision(self) -> int | None:
        return self._changes[0].revision if self._changes else None

    def extend(self, changes: Sequence[Change]) -> None:
        """Add changes in revision order (held back while paused)."""
        if self.paused:
            self._held.extend(changes)
            return
        for c in changes:
            if len(self._changes) == self.capacity:
                self._dropped += 1
            self._changes.append(c)
            text = change_text(c)
            self._texts.append(text)
            if self.query and self.query in text:
                self._matches.append(self._dropped + len(self._changes) - 1)
        if self._matches and self._matches[0] < self._dropped:
            self._matches = [m for m in self._matches if m >= self._dropped]

    def prepend(self, older: Sequence[Change]) -> int:
        """Add changes older than the window's oldest (up to capacity); returns how many."""
        room = self.capacity - len(self._changes)
        take = list(older)[-room:] if room > 0 else []
        for c in reversed(take):
            self._changes.appendleft(c)
            self._texts.appendleft(change_text(c))
            self._dropped -= 1
        if take and self.query:
            self.search(self.query)
        return len(take)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        held, self._held = self._held, []
        self.extend(held)

    def search(self, query: str) -> int:
        """Show only changes whose key, kind, writer, activation or value contain `query`
        (case-insensitive; '' shows all). Returns the number of matches."""
        self.query = query.strip().lower()
        if not self.query:
            self._matches = []
            return len(self._changes)
        q = self.query
        self._matches = [self._dropped + i for i, t in enumerate(self._texts) if q in t]
        return len(self._matches)

    # -- RowSource ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._matches) if self.query else len(self._changes)

    def change_at(self, i: int) -> Change | None:
        """Row i (newest first)."""
        n = len(self)
        if not 0 <= i < n:
            return None
        if self.query:
            return self._changes[self._matches[n - 1 - i] - self._dropped]
        return self._changes[n - 1 - i]

    def cells(self, i: int) -> Sequence[str] | None:
        c = self.change_at(i)
        if c is None:
            return None
        when = age(self.clock() * 1000 - c.time_ms) if self.clock else str(c.time_ms)
        return (
            str(c.revision),
            when,
            c.kind,
            c.key,
            f"v{c.version}",
            c.writer,
            preview(c.value, 200, deleted=c.deleted),
        )
