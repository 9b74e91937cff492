"""An in-memory facet index of the archive (numpy arrays by item id) for fast filtered search.

Holds per item: source, language, day, relevance and region/topic bit masks (~20 bytes an item,
about 20 MB for a million). Built from SQLite in one pass, rebuilt when the archive changes
(a cheap signature is compared on each use); read-only, never the source of truth.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

import numpy as np

SYNC_REBUILD_BELOW = 50_000  # larger archives are re-indexed in a background thread ...
MIN_REBUILD_SECONDS = 120.0  # ... at most this often (a busy crawl changes the archive constantly)
MAX_TAGS = 64  # bits per mask; a taxonomy with more tags of a kind falls back to SQL search


class FacetIndex:
    def __init__(self, db):
        self.signature = signature(db)
        rows = db.execute(
            "SELECT id, source, language, substr(coalesce(published, fetched_at), 1, 10), "
            "coalesce(relevant, -1), coalesce(published, fetched_at) FROM items"
        ).fetchall()
        max_id = max((r[0] for r in rows), default=0)
        self.max_id = max_id
        n = max_id + 1
        self.present = np.zeros(n, dtype=bool)
        self.source = np.zeros(n, dtype=np.int32)
        self.language = np.zeros(n, dtype=np.int32)
        self.day = np.zeros(n, dtype=np.int64)
        self.when = np.zeros(n, dtype=np.int64)  # seconds, to order by date exactly as SQL does
        self.relevant = np.full(n, -1, dtype=np.int8)
        self.masks = {"region": np.zeros(n, dtype=np.uint64), "topic": np.zeros(n, dtype=np.uint64)}
        self.source_names: list[str] = []
        self.language_names: list[str] = []
        self.bits: dict[str, dict[str, int]] = {"region": {}, "topic": {}}
        self.usable = True
        if not rows:
            self.ids_desc = np.zeros(0, dtype=np.int64)
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self.present[ids] = True
        self.source[ids] = self._codes([r[1] for r in rows], self.source_names)
        self.language[ids] = self._codes([r[2] or "unknown" for r in rows], self.language_names)
        days = np.array([_safe_day(r[3]) for r in rows], dtype="datetime64[D]")
        self.day[ids] = days.astype(np.int64)
        self.when[ids] = np.array([_safe_moment(r[5]) for r in rows], dtype="datetime64[s]").astype(np.int64)
        self.relevant[ids] = np.fromiter((r[4] for r in rows), dtype=np.int8, count=len(rows))
        del rows
        tag_rows = db.execute("SELECT item_id, kind, tag FROM item_tags").fetchall()
        for kind in ("region", "topic"):
            selected = [(i, t) for i, k, t in tag_rows if k == kind and i <= max_id]
            bits = self.bits[kind]
            for _, tag in selected:
                if tag not in bits:
                    bits[tag] = len(bits)
            if len(bits) > MAX_TAGS:
                self.usable = False
                break
            if selected:
                item_ids = np.fromiter(
                    (i for i, _ in selected), dtype=np.int64, count=len(selected)
                )
                values = np.fromiter(
                    (1 << bits[t] for _, t in selected), dtype=np.uint64, count=len(selected)
                )
                np.bitwise_or.at(self.masks[kind], item_ids, values)
        self.ids_desc = np.flatnonzero(self.present)[::-1].astype(np.int64)
        self.source_code = {name: i for i, name in enumerate(self.source_names)}
        self.language_code = {name: i for i, name in enumerate(self.language_names)}

    @staticmethod
    def _codes(values: list[str], names: list[str]) -> np.ndarray:
        lookup: dict[str, int] = {}
        out = np.empty(len(values), dtype=np.int32)
        for i, value in enumerate(values):
            code = lookup.get(value)
            if code is None:
                code = lookup[value] = len(names)
                names.append(value)
            out[i] = code
        return out

    def mask_for(self, kind: str, tags) -> np.uint64:
        bits = self.bits[kind]
        value = 0
        for tag in tags:
            if tag in bits:
                value |= 1 << bits[tag]
        return np.uint64(value)


def _safe_moment(text: str | None) -> str:
    try:
        return datetime.fromisoformat((text or "").replace("Z", "+00:00")).astimezone(UTC).replace(
            tzinfo=None).isoformat(timespec="seconds")
    except ValueError:
        return "1970-01-01T00:00:00"


def _safe_day(text: str | None) -> str:
    try:
        return date.fromisoformat(text or "").isoformat()
    except ValueError:
        return "1970-01-01"


def signature(db) -> tuple:
    """Cheap to read, changes whenever items are added or tags rewritten (a curator's review
    may only delete an old item's tags, or only change its relevance: its row counts too)."""
    return (
        db.execute("SELECT max(id) FROM items").fetchone()[0],
        db.execute("SELECT max(id) FROM tag_reviews").fetchone()[0],
        db.execute("SELECT max(rowid) FROM item_tags").fetchone()[0],
        db.execute(
            "SELECT count(*) FROM item_tags WHERE rowid > "
            "(SELECT coalesce(max(rowid), 0) - 1000 FROM item_tags)"
        ).fetchone()[0],
    )


class IndexHolder:
    """One FacetIndex per process, rebuilt in the background when the archive changed."""

    def __init__(self, open_connection):
        self.open_connection = open_connection
        self.index: FacetIndex | None = None
        self.lock = threading.Lock()
        self.building = False
        self.built_at = 0.0

    def status(self) -> str:
        """A sentence for the admin page."""
        if self.index is None:
            return "Search index: building (searches use SQL meanwhile)."
        if not self.index.usable:
            return "Search index: off (more than 64 regions or topics); searches use SQL."
        state = "ready, rebuilding" if self.building else "ready"
        return f"Search index: {state}, {int(self.index.present.sum()):,} items."

    def start(self) -> None:
        """Build the first index in the background (the app answers from SQL meanwhile)."""
        if self.index is None and not self.building:
            self.building = True
            threading.Thread(target=self._rebuild, daemon=True).start()

    def get(self, db) -> FacetIndex | None:
        if self.index is None:
            if self.building:
                return None  # still building: the caller uses the SQL path
            with self.lock:
                if self.index is None:
                    self.index = FacetIndex(db)
            return self.index if self.index.usable else None
        if not self.building and signature(db) != self.index.signature:
            if self.index.max_id < SYNC_REBUILD_BELOW:
                self.index = FacetIndex(db)  # small archives: rebuilding takes milliseconds
            elif time.monotonic() - self.built_at >= MIN_REBUILD_SECONDS:
                self.building = True
                threading.Thread(target=self._rebuild, daemon=True).start()
        return self.index if self.index.usable else None

    def _rebuild(self) -> None:
        try:
            conn = self.open_connection()
            try:
                self.index = FacetIndex(conn)
                self.built_at = time.monotonic()
            finally:
                conn.close()
        finally:
            self.building = False
