"""Answers computed from the archive, kept per process until the archive changes (any commit).

SQLite says when: `PRAGMA data_version` moves on a connection after another connection (any
process) committed, and `total_changes` after the connection wrote itself. Each per-thread
connection compares both before an answer is reused, so a new item is in every count and search
from the next request on. Holds no SQL of its own beyond that pragma.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# How many answers each kind keeps (least recently used go first). Text matches are numpy arrays
# of up to 20,000 ids (160 KB); results and charts are a few KB each.
CAPACITY = {"matches": 32, "search": 256, "chart": 64, "known": 4}
DEFAULT_CAPACITY = 64


class ArchiveMemo:
    def __init__(self, capacity: dict[str, int] | None = None):
        self.capacity = {**CAPACITY, **(capacity or {})}
        self._lock = threading.Lock()
        self._generation = 0
        self._seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._entries: dict[str, OrderedDict] = {}
        self.hits = 0
        self.misses = 0

    def generation(self, db) -> int:
        """A number that changes whenever the archive changed since this connection last looked."""
        conn = db.conn
        state = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        with self._lock:
            if self._seen.get(db) != state:
                # A connection seen for the first time may have missed commits: a change too.
                self._seen[db] = state
                self._generation += 1
                self._entries.clear()
            return self._generation

    def get(self, db, kind: str, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer for key, computed once per archive state (exceptions are not kept)."""
        generation = self.generation(db)
        with self._lock:
            entries = self._entries.setdefault(kind, OrderedDict())
            if key in entries:
                entries.move_to_end(key)
                self.hits += 1
                return entries[key]
            self.misses += 1
        value = compute()
        with self._lock:
            if generation == self._generation:  # else the archive changed while computing
                entries = self._entries.setdefault(kind, OrderedDict())
                entries[key] = value
                while len(entries) > self.capacity.get(kind, DEFAULT_CAPACITY):
                    entries.popitem(last=False)
        return value

    def bound(self, db) -> Callable[[Hashable, Callable[[], Any]], Any]:
        """memo(key, compute) for monitor.archive_queries, on this request's connection."""
        return lambda key, compute: self.get(db, "matches", key, compute)


def index_key(index) -> Hashable:
    """Which in-memory facet index an answer came from (a rebuilt index may answer differently)."""
    return None if index is None else (id(index), index.signature)


# -- the answers the pages share ---------------------------------------------------------------


def search(request, params, facets: bool = True):
    """monitor.archive_queries.search with this process's index, kept until the archive changes."""
    from monitor import archive_queries as aq
    from monitor.web.common import get_db, get_index

    db, index = get_db(request), get_index(request)
    memo: ArchiveMemo = request.app.state.memo
    return memo.get(
        db,
        "search",
        (params, facets, index_key(index)),
        lambda: aq.search(db, params, facets=facets, index=index, memo=memo.bound(db)),
    )


def weekly_counts(request, kind: str, since: str, until: str, params):
    from monitor import archive_queries as aq
    from monitor.web.common import get_db, get_index

    db, index = get_db(request), get_index(request)
    memo: ArchiveMemo = request.app.state.memo
    return memo.get(
        db,
        "chart",
        (kind, since, until, params, index_key(index)),
        lambda: aq.weekly_counts(db, kind, since, until, params, index=index, memo=memo.bound(db)),
    )


def known_values(request) -> dict:
    """Languages and sources for the filter menus."""
    from monitor import archive_queries as aq
    from monitor.web.common import get_db

    db = get_db(request)
    return request.app.state.memo.get(db, "known", (), lambda: aq.known_values(db))


def source_report(request) -> list[dict]:
    """Source health with the weekly volumes counted in memory (exact at every request)."""
    from monitor import archive_queries as aq
    from monitor.web.common import get_db

    return aq.source_report(get_db(request), volumes=request.app.state.source_volumes)
