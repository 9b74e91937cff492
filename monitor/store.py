"""The archive: opens the SQLite file (WAL), runs migrations, and owns the SQL for items and sources.

Writes are short transactions so a kill -9 at any moment leaves a consistent file; the next crawl
simply sees fewer items as known and completes the work.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.errors import SearchQueryError, StoreError
from monitor.migrations import MIGRATIONS


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: str | Path, migrate: bool = True) -> sqlite_utils.Database:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        if migrate:
            run_migrations(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"The archive {path} cannot be opened: {exc}.") from exc
    except OSError as exc:
        raise StoreError(f"The archive {path} cannot be created: {exc}.") from exc
    return db


def run_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply migrations not yet recorded; safe to call any number of times, also concurrently."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    applied = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    done = []
    for name, fn in MIGRATIONS:
        if name in applied:
            continue
        # Migrations are idempotent (IF NOT EXISTS, checks first), so two processes starting at
        # once both succeed; they run outside a transaction because executescript() commits.
        fn(db)
        db.execute("INSERT OR IGNORE INTO _migrations VALUES (?, ?)", [name, now_iso()])
        done.append(name)
    return done


class transaction:
    """BEGIN IMMEDIATE ... COMMIT on an autocommit connection (rolls back on error)."""

    def __init__(self, db: sqlite_utils.Database):
        self.conn = db.conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False


# -- sources ------------------------------------------------------------------------------------

def sync_sources(db: sqlite_utils.Database, sources: Sequence[Any]) -> None:
    """One row per configured source; sources removed from the config are kept but marked."""
    with transaction(db):
        db.execute("UPDATE sources SET configured = 0")
        for s in sources:
            db.execute(
                """INSERT INTO sources (name, url, kind, language, every_seconds, enabled, configured)
                   VALUES (?, ?, ?, ?, ?, ?, 1)
                   ON CONFLICT(name) DO UPDATE SET url = excluded.url, kind = excluded.kind,
                     language = excluded.language, every_seconds = excluded.every_seconds,
                     enabled = excluded.enabled, configured = 1""",
                [s.name, s.url, s.kind, s.language, s.every, int(s.enabled)],
            )


def mark_attempt(db: sqlite_utils.Database, source: str, at: str | None = None) -> None:
    db.execute("UPDATE sources SET last_attempt = ? WHERE name = ?", [at or now_iso(), source])


def record_source_result(db: sqlite_utils.Database, source: str, error: str | None,
                         new_items: int, seen_items: int, warning: str | None = None) -> None:
    """Update a source's health after a crawl: success resets the failure counter.

    A warning (the feed was read but is malformed, some article pages failed) is shown as the
    last error without counting as a failure.
    """
    at = now_iso()
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with transaction(db):
        if error:
            db.execute(
                """UPDATE sources SET last_error = ?, last_error_at = ?,
                   consecutive_failures = consecutive_failures + 1,
                   last_new_items = ?, last_seen_items = ? WHERE name = ?""",
                [error, at, new_items, seen_items, source],
            )
        else:
            db.execute(
                """UPDATE sources SET last_success = ?, consecutive_failures = 0,
                   last_new_items = ?, last_seen_items = ? WHERE name = ?""",
                [at, new_items, seen_items, source],
            )
            # A clean run clears the last error (its history stays in fetch_log).
            db.execute("UPDATE sources SET last_error = ?, last_error_at = ? WHERE name = ?",
                       [warning, at if warning else None, source])
        db.execute(
            """UPDATE sources SET
                 items_last_7_days = (SELECT count(*) FROM item_sources
                                      WHERE source = ? AND first_seen >= ?),
                 total_items = (SELECT count(*) FROM item_sources WHERE source = ?)
               WHERE name = ?""",
            [source, week_ago, source, source],
        )


def log_fetch_error(db: sqlite_utils.Database, source: str, url: str, error: str) -> None:
    db.execute("INSERT INTO fetch_log (source, url, error, at) VALUES (?, ?, ?, ?)",
               [source, url, error, now_iso()])


def source_health(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM sources WHERE configured = 1 ORDER BY name"))


# -- conditional GET ----------------------------------------------------------------------------

def http_validators(db: sqlite_utils.Database, url: str) -> dict:
    row = db.execute("SELECT etag, last_modified FROM http_cache WHERE url = ?", [url]).fetchone()
    return {"etag": row[0], "last_modified": row[1]} if row else {}


def save_http_validators(db: sqlite_utils.Database, url: str, etag: str | None,
                         last_modified: str | None) -> None:
    db.execute(
        """INSERT INTO http_cache (url, etag, last_modified, checked_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(url) DO UPDATE SET etag = excluded.etag,
             last_modified = excluded.last_modified, checked_at = excluded.checked_at""",
        [url, etag, last_modified, now_iso()],
    )


# -- items --------------------------------------------------------------------------------------

ITEM_FIELDS = ("url", "source", "title", "summary", "text", "language", "declared_language",
               "published", "fetched_at", "author", "image", "feed_url", "guid", "full_text",
               "extract_error", "content_hash")


def known_items(db: sqlite_utils.Database, keys: Iterable[str]) -> dict[str, int]:
    """url_key -> item id for the keys already in the archive."""
    keys = [k for k in keys if k]
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for key, item_id in db.execute(
            f"SELECT url_key, item_id FROM item_urls WHERE url_key IN ({marks})", chunk
        ):
            found[key] = item_id
    return found


def save_items(db: sqlite_utils.Database, items: Sequence[dict]) -> list[tuple[int, bool]]:
    """Insert or merge items in one transaction; returns (item id, is_new) per item.

    An item is matched on any of its url_keys. A feed-only item later seen with the article's full
    text is upgraded in place; otherwise the stored row wins and only the new source is recorded.
    """
    results = []
    with transaction(db):
        for item in items:
            results.append(_save_one(db, item))
    return results


def _save_one(db: sqlite_utils.Database, item: dict) -> tuple[int, bool]:
    keys = [k for k in item.get("url_keys", ()) if k]
    existing = known_items(db, keys)
    now = item.get("fetched_at") or now_iso()
    if existing:
        item_id = next(iter(existing.values()))
        row = db.execute("SELECT full_text, published FROM items WHERE id = ?", [item_id]).fetchone()
        if row and not row[0] and item.get("full_text"):
            db.execute(
                """UPDATE items SET text = ?, full_text = 1, extract_error = NULL,
                   title = CASE WHEN title = '' THEN ? ELSE title END,
                   author = coalesce(author, ?), image = coalesce(image, ?),
                   published = coalesce(published, ?), content_hash = ?, tagged_at = NULL
                   WHERE id = ?""",
                [item.get("text", ""), item.get("title", ""), item.get("author"),
                 item.get("image"), item.get("published"), item.get("content_hash"), item_id],
            )
        is_new = False
    else:
        values = {f: item.get(f) for f in ITEM_FIELDS}
        values["fetched_at"] = now
        for text_field in ("title", "summary", "text"):
            values[text_field] = values[text_field] or ""
        values["full_text"] = int(bool(values["full_text"]))
        try:
            cursor = db.execute(
                f"INSERT INTO items ({', '.join(ITEM_FIELDS)}) VALUES ({', '.join('?' * len(ITEM_FIELDS))})",
                [values[f] for f in ITEM_FIELDS],
            )
            item_id = cursor.lastrowid
            is_new = True
        except sqlite3.IntegrityError:
            # Same canonical URL reached through a key we had not recorded: it is the same item.
            item_id = db.execute("SELECT id FROM items WHERE url = ?", [values["url"]]).fetchone()[0]
            is_new = False
    for key in keys:
        db.execute("INSERT OR IGNORE INTO item_urls (url_key, item_id) VALUES (?, ?)", [key, item_id])
    db.execute("INSERT OR IGNORE INTO item_sources (item_id, source, first_seen) VALUES (?, ?, ?)",
               [item_id, item["source"], now])
    return item_id, is_new


def get_item(db: sqlite_utils.Database, item_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM items WHERE id = ?", [item_id]))
    if not rows:
        return None
    item = rows[0]
    item["sources"] = [r["source"] for r in db.query(
        "SELECT source FROM item_sources WHERE item_id = ? ORDER BY first_seen", [item_id])]
    item["tags"] = list(db.query(
        "SELECT kind, tag, score, evidence FROM item_tags WHERE item_id = ? ORDER BY kind, score DESC",
        [item_id]))
    for tag in item["tags"]:
        try:
            tag["evidence"] = json.loads(tag["evidence"])
        except (TypeError, ValueError):
            pass
    return item


# -- full-text search ---------------------------------------------------------------------------

_BAREWORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*\*?", re.UNICODE)


def fts_query(user_query: str) -> str:
    """Turn what a person types into an FTS5 query: "phrases", prefix*, OR, NOT, -word, (groups).

    Bare words are quoted so punctuation cannot break FTS5 syntax; operators are kept. A query
    that is still malformed raises SearchQueryError with a sentence, never an SQL error.
    """
    text = user_query.strip()
    if not text:
        raise SearchQueryError("The search is empty: type one or more words.")
    if text.count('"') % 2:
        raise SearchQueryError('The search has an unclosed quotation mark (").')
    tokens = re.findall(r'"[^"]*"|\(|\)|-?[^\s()"]+', text)
    out: list[str] = []
    depth = 0
    for token in tokens:
        if token in ("AND", "OR", "NOT"):
            if not out or out[-1] in ("AND", "OR", "NOT", "("):
                raise SearchQueryError(f"'{token}' needs a word on both sides.")
            out.append(token)
            continue
        if token == "(":
            depth += 1
            if out and out[-1] not in ("AND", "OR", "NOT", "("):
                out.append("AND")  # FTS5 wants an operator before a group: "a (b OR c)"
            out.append(token)
            continue
        if token == ")":
            depth -= 1
            if depth < 0 or (out and out[-1] in ("AND", "OR", "NOT", "(")):
                raise SearchQueryError("The search has a closing bracket without a matching opening one.")
            out.append(token)
            continue
        negate = token.startswith("-") and len(token) > 1
        if negate:
            token = token[1:]
            if not out or out[-1] in ("AND", "OR", "NOT", "("):
                raise SearchQueryError("A word with '-' in front must follow another word.")
            out.append("NOT")
        if token.startswith('"'):
            if out and out[-1] == ")":
                out.append("AND")
            phrase = token.strip('"').replace('"', "")
            words = _BAREWORD.findall(phrase)
            if not words:
                raise SearchQueryError("The search has an empty phrase.")
            out.append('"' + " ".join(w.rstrip("*") for w in words) + '"')
            continue
        words = _BAREWORD.findall(token)
        if not words:
            continue
        if out and out[-1] == ")":
            out.append("AND")
        for word in words:
            prefix = word.endswith("*")
            word = word.rstrip("*")
            out.append(f'"{word}"' + ("*" if prefix else ""))
    if depth:
        raise SearchQueryError("The search has an opening bracket that is never closed.")
    if not out:
        raise SearchQueryError("The search has no words to look for.")
    if out[-1] in ("AND", "OR", "NOT"):
        raise SearchQueryError("The search ends with an operator: add a word after it.")
    if all(t in ("AND", "OR", "NOT", "(", ")") for t in out):
        raise SearchQueryError("The search has no words to look for.")
    return " ".join(out)


def search_items(db: sqlite_utils.Database, query: str, *, sources: Sequence[str] = (),
                 since: str | None = None, until: str | None = None, limit: int = 50,
                 offset: int = 0, order: str = "relevance") -> list[dict]:
    match = fts_query(query)
    where = ["items_fts MATCH ?"]
    params: list[Any] = [match]
    if sources:
        where.append(f"items.source IN ({','.join('?' * len(sources))})")
        params.extend(sources)
    if since:
        where.append("coalesce(items.published, items.fetched_at) >= ?")
        params.append(since)
    if until:
        where.append("coalesce(items.published, items.fetched_at) < ?")
        params.append(until)
    order_by = "rank" if order == "relevance" else "coalesce(items.published, items.fetched_at) DESC"
    sql = f"""
        SELECT items.id, items.url, items.source, items.title, items.language, items.published,
               items.fetched_at, items.relevant, items.cluster_id,
               snippet(items_fts, -1, '[', ']', ' … ', 24) AS snippet
        FROM items_fts JOIN items ON items.id = items_fts.rowid
        WHERE {' AND '.join(where)}
        ORDER BY {order_by} LIMIT ? OFFSET ?"""
    params.extend([limit, offset])
    try:
        return list(db.query(sql, params))
    except sqlite3.OperationalError as exc:
        raise SearchQueryError(f"The search could not be understood ({exc}).") from None
