"""Schema migrations, applied in order on every start; each runs once and is safe to re-run.

Append new migrations at the end with a new, unique name; never edit one that has shipped.
The tables are a public interface documented in docs/database.md.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]):
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_archive(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS items (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,          -- canonical URL
            source TEXT NOT NULL,              -- first source that delivered it
            title TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            language TEXT,                     -- ISO 639-1, detected from the text
            declared_language TEXT,            -- what the feed or page claimed
            published TEXT,                    -- ISO 8601 UTC, NULL when unknown or absurd
            fetched_at TEXT NOT NULL,          -- ISO 8601 UTC
            author TEXT,
            image TEXT,
            feed_url TEXT,                     -- the link as the feed gave it
            guid TEXT,
            full_text INTEGER NOT NULL DEFAULT 0,  -- 1 when text came from the article page
            extract_error TEXT,                -- why the page could not be used, if it could not
            content_hash TEXT,
            relevant INTEGER,                  -- set by tagging: 1 about migration/asylum, 0 not
            cluster_id INTEGER,                -- story cluster (items.id of the cluster's first item)
            tagged_at TEXT
        );
        CREATE INDEX IF NOT EXISTS items_published ON items(published);
        CREATE INDEX IF NOT EXISTS items_source ON items(source);
        CREATE INDEX IF NOT EXISTS items_cluster ON items(cluster_id);
        CREATE INDEX IF NOT EXISTS items_fetched ON items(fetched_at);

        -- Every URL form under which an item was seen, keyed without scheme, www., tracking, AMP.
        CREATE TABLE IF NOT EXISTS item_urls (
            url_key TEXT PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE
        );
        CREATE INDEX IF NOT EXISTS item_urls_item ON item_urls(item_id);

        -- Which sources delivered each item (one item may appear in several feeds).
        CREATE TABLE IF NOT EXISTS item_sources (
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            PRIMARY KEY (item_id, source)
        );

        CREATE TABLE IF NOT EXISTS item_tags (
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('region', 'topic')),
            tag TEXT NOT NULL,
            score REAL NOT NULL,
            evidence TEXT NOT NULL,            -- JSON: matched terms and where they matched
            PRIMARY KEY (item_id, kind, tag)
        );
        CREATE INDEX IF NOT EXISTS item_tags_tag ON item_tags(kind, tag);

        CREATE TABLE IF NOT EXISTS sources (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            kind TEXT NOT NULL,
            language TEXT,
            every_seconds REAL NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            last_attempt TEXT,
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            items_last_7_days INTEGER NOT NULL DEFAULT 0,
            total_items INTEGER NOT NULL DEFAULT 0,
            last_new_items INTEGER NOT NULL DEFAULT 0,
            last_seen_items INTEGER NOT NULL DEFAULT 0,
            configured INTEGER NOT NULL DEFAULT 1
        );

        CREATE TABLE IF NOT EXISTS fetch_log (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            error TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS fetch_log_source_at ON fetch_log(source, at);

        -- Conditional GET validators per fetched feed/listing URL.
        CREATE TABLE IF NOT EXISTS http_cache (
            url TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            checked_at TEXT NOT NULL
        );
        """
    )


@migration
def m002_full_text_index(db: sqlite_utils.Database) -> None:
    if "items_fts" not in db.table_names():
        db["items"].enable_fts(["title", "summary", "text"], tokenize="unicode61 remove_diacritics 2",
                               create_triggers=True)
