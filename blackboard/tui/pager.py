"""The entry table's rows: a filtered, paged, live view of a board's keys (no textual).

Two ways to find the rows, both reading the board's index (a lexicographic zset) and never
the whole board:

- ranked: a pattern that is a literal prefix followed by ``*`` (or just ``*``) with no other
  filter. The row count is one ZLEXCOUNT and row i is found by rank with ZRANGE, so a
  100,000-entry board costs the same as a small one: only the page on screen is read.
- scan: any other glob, a schema or writer filter, or divergent-only. The index (or the
  ``divergent`` zset) is walked in key order, a chunk per step, inside the pattern's literal
  prefix range; rows that match are appended, so the table fills while the walk goes on.

The change log keeps it current without a rescan: `apply()` updates cached rows in place and
notes keys that may have been created or deleted; `settle()` then makes at most one
ZLEXCOUNT (ranked) or reads the few new rows (scan). Imports the read model only.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from blackboard.board.names import check_pattern
from blackboard.store.entry import Change
from blackboard.tui.model import BoardReader, EntryRow

__all__ = ["EntryFilter", "EntryPager"]

PAGE = 100
SCAN_CHUNK = 1000
ROW_CACHE = 4096
_ENTRY_KINDS = frozenset({"put", "apply", "merge", "delete"})


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries the table shows; `schema` and `writer` are globs ('' = any)."""

    pattern: str = "*"
    schema: str = ""
    writer: str = ""
    divergent: bool = False

    def __post_init__(self) -> None:
        check_pattern(self.pattern)

    @property
    def prefix(self) -> str:
        """The literal part of the pattern before its first glob character."""
        for i, ch in enumerate(self.pattern):
            if ch in "*?[":
                return self.pattern[:i]
        return self.pattern

    @property
    def ranked(self) -> bool:
        """Rows can be found by rank in the index (no filter beyond a prefix)."""
        p = self.pattern
        return (
            p.endswith("*")
            and p[:-1] == self.prefix
            and not (self.schema or self.writer or self.divergent)
        )

    @property
    def row_filtered(self) -> bool:
        return bool(self.schema or self.writer)

    def matches_key(self, key: str) -> bool:
        return self.pattern == "*" or fnmatchcase(key, self.pattern)

    def matches_row(self, row: EntryRow) -> bool:
        if self.writer and not fnmatchcase(row.writer, self.writer):
            return False
        return not (self.schema and not fnmatchcase(row.schema or "", self.schema))

    def describe(self) -> str:
        parts = [self.pattern]
        if self.schema:
            parts.append(f"schema={self.schema}")
        if self.writer:
            parts.append(f"writer={self.writer}")
        if self.divergent:
            parts.append("divergent")
        return " ".join(parts)


class EntryPager:
    """Row i of the filtered table, loaded on demand and kept current from the log."""

    def __init__(self, reader: BoardReader, filt: EntryFilter | None = None) -> None:
        self.reader = reader
        self.filter = filt or EntryFilter()
        self._rows: OrderedDict[str, EntryRow | None] = OrderedDict()
        self._latest: OrderedDict[str, Change] = OrderedDict()
        self._lock = asyncio.Lock()  # reads and log folding interleave at awaits
        self.generation = 0  # one step per reset: a scan of an older filter stops
        self._reset_state()

    def _reset_state(self) -> None:
        self.total = 0  # ranked: rows under the prefix; scan: rows matched so far
        self._base = 0  # ranked: index rank of the first key under the prefix
        self._pages: dict[int, list[str]] = {}
        self._matched: list[str] = []
        self._source: list[str] | None = None  # scan over divergent keys
        self._cursor = 0  # scan: next rank (or source position) to read
        self._end = 0  # scan: rank (or position) past the last candidate
        self.scanned = 0
        self.scan_done = True
        self._scanned_upto = ""  # scan: the last key looked at
        self._maybe_moved: set[str] = set()
        self._moved_for_sure = False
        self._refresh_divergent = False

    # -- state -------------------------------------------------------------------------------

    @property
    def ranked(self) -> bool:
        return self.filter.ranked

    @property
    def candidates(self) -> int:
        """Keys a scan has to look at in all (for progress)."""
        return self._end

    def __len__(self) -> int:
        return self.total if self.ranked else len(self._matched)

    def key_at(self, i: int) -> str | None:
        """The key of row i, or None while its page is not loaded."""
        if self.ranked:
            page = self._pages.get(i // PAGE)
            if page is None:
                return None
            j = i % PAGE
            return page[j] if j < len(page) else None
        return self._matched[i] if 0 <= i < len(self._matched) else None

    def row_at(self, i: int) -> EntryRow | None:
        """The row of row i, or None while it is not loaded."""
        key = self.key_at(i)
        if key is None:
            return None
        return self._rows.get(key)

    def has_row(self, i: int) -> bool:
        key = self.key_at(i)
        return key is not None and key in self._rows

    def index_of(self, key: str) -> int | None:
        """The row index of `key` when it is loaded."""
        if self.ranked:
            for p, keys in self._pages.items():
                j = bisect.bisect_left(keys, key)
                if j < len(keys) and keys[j] == key:
                    return p * PAGE + j
            return None
        j = bisect.bisect_left(self._matched, key)
        return j if j < len(self._matched) and self._matched[j] == key else None

    def _remember(self, key: str, row: EntryRow | None) -> None:
        latest = self._latest.get(key)
        if latest is not None and (row is None or latest.revision > row.revision):
            base = row or EntryRow(key, 0, 0, "", 0, None, "put", None)
            row = base.changed(latest)
        self._rows[key] = row
        self._rows.move_to_end(key)
        while len(self._rows) > ROW_CACHE:
            self._rows.popitem(last=False)

    # -- loading -----------------------------------------------------------------------------

    async def reset(self, filt: EntryFilter | None = None) -> None:
        """Start over with `filt` (or the same filter): counts (ranked) or a new scan."""
        async with self._lock:
            await self._reset(filt)

    async def _reset(self, filt: EntryFilter | None = None) -> None:
        if filt is not None:
            self.filter = filt
        self.generation += 1
        self._reset_state()
        f = self.filter
        if f.ranked:
            self._base = await self.reader.rank(f.prefix)
            self.total = await self.reader.count(f.prefix)
            return
        self.scan_done = False
        if f.divergent:
            self._source = await self.reader.divergent()
            lo = bisect.bisect_left(self._source, f.prefix)
            self._cursor, self._end = lo, len(self._source)
        else:
            self._cursor = await self.reader.rank(f.prefix)
            self._end = self._cursor + await self.reader.count(f.prefix)
        self.scanned = 0

    async def load(self, start: int, stop: int) -> bool:
        """Make rows [start, stop) available; True when anything was read."""
        async with self._lock:
            return await self._load(start, stop)

    async def _load(self, start: int, stop: int) -> bool:
        start, stop = max(0, start), min(len(self), stop)
        if stop <= start:
            return False
        did = False
        if self.ranked:
            for p in range(start // PAGE, (stop - 1) // PAGE + 1):
                if p not in self._pages:
                    lo = self._base + p * PAGE
                    hi = min(self._base + self.total, lo + PAGE)
                    self._pages[p] = await self.reader.keys_at(lo, hi)
                    did = True
        want = [
            k
            for i in range(start, stop)
            if (k := self.key_at(i)) is not None and k not in self._rows
        ]
        if want:
            for key, row in (await self.reader.rows(want)).items():
                self._remember(key, row)
            did = True
        return did

    async def scan_step(self, budget: int = SCAN_CHUNK) -> bool:
        """Look at the next `budget` candidate keys; False when the scan is done."""
        async with self._lock:
            return await self._scan_step(budget)

    async def _scan_step(self, budget: int = SCAN_CHUNK) -> bool:
        if self.scan_done:
            return False
        f = self.filter
        hi = min(self._end, self._cursor + budget)
        if self._source is not None:
            keys = self._source[self._cursor : hi]
        else:
            keys = await self.reader.keys_at(self._cursor, hi)
        self._cursor = hi
        self.scanned += len(keys)
        if keys:
            self._scanned_upto = keys[-1]
        keys = [k for k in keys if k.startswith(f.prefix) and f.matches_key(k)]
        if f.row_filtered and keys:
            rows = await self.reader.rows(keys)
            for key, row in rows.items():
                self._remember(key, row)
            keys = [k for k in keys if (r := rows.get(k)) is not None and f.matches_row(r)]
        for k in keys:  # in key order, after everything matched so far
            if not self._matched or k > self._matched[-1]:
                self._matched.append(k)
            elif self.index_of(k) is None:
                bisect.insort(self._matched, k)
        if self._cursor >= self._end:
            self.scan_done = True
        return not self.scan_done

    # -- following the log -------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> bool:
        """Fold log changes into the cached rows; True when a shown row may have changed.
        Keys that may have appeared or gone are kept for `settle()`."""
        touched = False
        f = self.filter
        for c in changes:
            if c.kind == "propose" or (c.kind == "merge" and f.divergent):
                if f.divergent:
                    self._refresh_divergent = touched = True
                if c.kind == "propose":
                    continue
            if c.kind not in _ENTRY_KINDS:
                continue
            self._latest[c.key] = c
            self._latest.move_to_end(c.key)
            if len(self._latest) > ROW_CACHE:
                self._latest.popitem(last=False)
            cached = c.key in self._rows
            old = self._rows.get(c.key)
            if cached and (old is None or old.revision < c.revision):
                base = old or EntryRow(c.key, 0, 0, "", 0, None, "put", None)
                self._rows[c.key] = base.changed(c)
                touched = True
            if f.divergent or not c.key.startswith(f.prefix) or not f.matches_key(c.key):
                continue
            if c.deleted or c.version == 1 or old is None or old.deleted:
                self._maybe_moved.add(c.key)  # created, deleted, or not known here
                if c.deleted or c.version == 1 or (old is not None and old.deleted):
                    self._moved_for_sure = True
            elif f.row_filtered:
                self._maybe_moved.add(c.key)  # its writer may no longer match
        return touched

    async def settle(self) -> bool:
        """Account for keys that appeared or went since the last `apply()`: at most one count
        (ranked) or one pipelined read of the keys concerned (scan). True when the rows
        or their order changed."""
        async with self._lock:
            return await self._settle()

    async def _settle(self) -> bool:
        moved, self._maybe_moved = self._maybe_moved, set()
        refresh, self._refresh_divergent = self._refresh_divergent, False
        sure, self._moved_for_sure = self._moved_for_sure, False
        f = self.filter
        if f.ranked:
            if not moved:
                return False
            before = self.total
            self.total = await self.reader.count(f.prefix)
            if self.total == before and not sure:
                return False
            first = min(moved)
            # pages wholly before the first moved key keep their ranks; the rest re-read
            self._pages = {p: ks for p, ks in self._pages.items() if ks and ks[-1] < first}
            return True
        if f.divergent:
            if not refresh:
                return False
            fresh = [
                k
                for k in await self.reader.divergent()
                if k.startswith(f.prefix) and f.matches_key(k)
            ]
            if f.row_filtered:
                need = [k for k in fresh if k not in self._rows]
                for key, row in (await self.reader.rows(need)).items():
                    self._remember(key, row)
                fresh = [
                    k for k in fresh if (r := self._rows.get(k)) is not None and f.matches_row(r)
                ]
            changed = fresh != self._matched
            self._matched, self._source, self.scan_done = fresh, None, True
            return changed
        if not moved:
            return False
        keys = sorted(moved)
        live = await self.reader.rows(keys)
        changed = False
        for key in keys:
            row = live.get(key)
            self._remember(key, row)
            if not self.scan_done and key > self._scanned_upto:
                continue  # the scan has not got there yet and will see it
            present = self.index_of(key) is not None
            wanted = (
                row is not None and not row.deleted and (not f.row_filtered or f.matches_row(row))
            )
            if wanted and not present:
                bisect.insort(self._matched, key)
                changed = True
            elif present and not wanted:
                self._matched.remove(key)
                changed = True
        return changed
