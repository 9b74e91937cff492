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


@migration
def m500_web_accounts(db: sqlite_utils.Database) -> None:
    """Web desk (issue 5): accounts, sessions, login attempts, app secrets, saved searches."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS web_users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            email TEXT,
            password_hash TEXT NOT NULL,       -- argon2id
            role TEXT NOT NULL CHECK (role IN ('admin', 'curator', 'analyst')),
            created_at TEXT NOT NULL,
            password_changed_at TEXT NOT NULL
        );

        -- Server-side sessions: the cookie carries a random token; only its SHA-256 is stored.
        CREATE TABLE IF NOT EXISTS web_sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            ip TEXT,
            user_agent TEXT
        );
        CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions(user_id);
        CREATE INDEX IF NOT EXISTS web_sessions_expires ON web_sessions(expires_at);

        -- Failed and successful logins, for rate limiting by username and by client address.
        CREATE TABLE IF NOT EXISTS web_login_attempts (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL COLLATE NOCASE,
            ip TEXT NOT NULL,
            at TEXT NOT NULL,
            ok INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS web_login_attempts_user ON web_login_attempts(username, at);
        CREATE INDEX IF NOT EXISTS web_login_attempts_ip ON web_login_attempts(ip, at);

        -- Generated secrets (used when the secret environment variable is not set).
        CREATE TABLE IF NOT EXISTS web_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE IF NOT EXISTS saved_searches (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            query TEXT NOT NULL,
            filters TEXT NOT NULL DEFAULT '{}',  -- JSON: regions, topics, languages, sources
            frequency TEXT NOT NULL CHECK (frequency IN ('daily', 'weekly')),
            email TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_run_at TEXT,                  -- matches fetched after this were mailed
            last_sent_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS saved_searches_user ON saved_searches(user_id);

        -- Archive search: date filters and weekly charts group on the item's date.
        CREATE INDEX IF NOT EXISTS items_when ON items(coalesce(published, fetched_at));
        CREATE INDEX IF NOT EXISTS items_language ON items(language);
        CREATE INDEX IF NOT EXISTS item_tags_tag_item ON item_tags(kind, tag, item_id);
        """
    )


@migration
def m100_digest_tables(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- One weekly issue of the digest (see docs/digest.md).
        CREATE TABLE IF NOT EXISTS digests (
            id INTEGER PRIMARY KEY,
            week TEXT NOT NULL UNIQUE,          -- ISO week, e.g. 2026-W49
            state TEXT NOT NULL DEFAULT 'draft'
                CHECK (state IN ('draft', 'approved', 'sending', 'sent')),
            title TEXT NOT NULL,
            intro TEXT NOT NULL DEFAULT '',     -- editorial, plain text with blank-line paragraphs
            window_start TEXT NOT NULL,         -- ISO 8601 UTC, stories published from ...
            window_end TEXT NOT NULL,           -- ... up to (excluded); equals send_at
            draft_at TEXT NOT NULL,             -- ISO 8601 UTC, when the scheduler drafts it
            send_at TEXT NOT NULL,              -- ISO 8601 UTC, when an approved issue is sent
            created_at TEXT NOT NULL,
            drafted_at TEXT NOT NULL,           -- last (re-)draft
            updated_at TEXT NOT NULL,
            revision INTEGER NOT NULL DEFAULT 1,  -- bumped on every change (render cache key)
            approved_by TEXT,
            approved_at TEXT,
            approved_late INTEGER NOT NULL DEFAULT 0,
            sending_at TEXT,
            sent_at TEXT,
            missed_at TEXT                      -- set when send time passed without approval
        );

        -- The stories of an issue, one per story cluster, in section order.
        CREATE TABLE IF NOT EXISTS digest_entries (
            digest_id INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
            story INTEGER NOT NULL,             -- coalesce(items.cluster_id, items.id)
            item_id INTEGER NOT NULL REFERENCES items(id),  -- the item shown (representative)
            section TEXT NOT NULL,              -- [[digest.sections]] slug
            position INTEGER NOT NULL,          -- order within the section, from 1
            included INTEGER NOT NULL,          -- 0: a candidate the curator can include
            headline TEXT NOT NULL,
            summary TEXT NOT NULL,
            score REAL NOT NULL DEFAULT 0,
            outlets INTEGER NOT NULL DEFAULT 1,
            manual INTEGER NOT NULL DEFAULT 0,  -- 1 when added or placed by a curator
            data TEXT NOT NULL DEFAULT '{}',    -- JSON: source, url, published, also reported by, tags
            PRIMARY KEY (digest_id, story)
        );
        CREATE INDEX IF NOT EXISTS digest_entries_order ON digest_entries(digest_id, section, position);

        -- Every curator action, replayed on top of a re-draft so edits survive it.
        CREATE TABLE IF NOT EXISTS digest_edits (
            id INTEGER PRIMARY KEY,
            digest_id INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            by TEXT NOT NULL,
            action TEXT NOT NULL,   -- include exclude move section headline summary intro add
            story INTEGER,          -- the entry acted on (NULL for intro)
            value TEXT NOT NULL DEFAULT '{}'  -- JSON: the new value(s)
        );
        CREATE INDEX IF NOT EXISTS digest_edits_digest ON digest_edits(digest_id, id);
        """
    )


@migration
def m400_subscribers_outbox(db: sqlite_utils.Database) -> None:
    """Subscribers and sending (issue 4, parts 3-5); documented in docs/subscribers.md."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS subscribers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so an old link cannot hit a new row
            email TEXT NOT NULL UNIQUE,            -- normalised: trimmed, lowercase, IDN domain in Unicode
            smtp_address TEXT NOT NULL,            -- what goes on the envelope (punycode domain)
            name TEXT NOT NULL DEFAULT '',
            organisation TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL DEFAULT 'en',
            regions TEXT NOT NULL DEFAULT '[]',    -- JSON list of region slugs; empty = everything
            topics TEXT NOT NULL DEFAULT '[]',     -- JSON list of topic slugs; empty = everything
            status TEXT NOT NULL CHECK (status IN
                   ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
            token_key TEXT NOT NULL UNIQUE,        -- random; what the signed links carry
            consent_at TEXT NOT NULL,              -- consent record: when,
            consent_how TEXT NOT NULL,             --   how (web, cli, import:FILE ...),
            consent_text_version TEXT NOT NULL DEFAULT '',  -- which consent text was shown,
            consent_ip TEXT,                       --   and for web sign-ups the IP
            consent_user_agent TEXT,               --   and the user agent
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            confirmed_at TEXT,
            unsubscribed_at TEXT,
            unsubscribe_how TEXT,
            bounced_at TEXT,
            bounce_reason TEXT
        );
        CREATE INDEX IF NOT EXISTS subscribers_status ON subscribers(status);

        -- Addresses that must never be mailed again (erased or complained): SHA-256 only.
        CREATE TABLE IF NOT EXISTS suppressions (
            email_hash TEXT PRIMARY KEY,
            reason TEXT NOT NULL CHECK (reason IN ('erased', 'complained')),
            at TEXT NOT NULL
        );

        -- Confirmation mails sent, for the limit of one per address per 24 hours (hashed address).
        CREATE TABLE IF NOT EXISTS confirmations (
            id INTEGER PRIMARY KEY,
            email_hash TEXT NOT NULL,
            sent_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS confirmations_hash ON confirmations(email_hash, sent_at);

        -- Recipients of an issue frozen at approval: one row per (issue, subscriber).
        CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY,
            issue_id INTEGER NOT NULL,
            subscriber_id INTEGER,                 -- NULL after the subscriber was erased
            email TEXT NOT NULL,                   -- smtp address at freeze time ('' once erased)
            message_id TEXT NOT NULL UNIQUE,       -- the unique key, also the Message-ID header
            status TEXT NOT NULL CHECK (status IN
                   ('queued', 'sending', 'sent', 'unknown', 'bounced', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,                  -- a 4xx answer: not before this time
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (issue_id, subscriber_id)
        );
        CREATE INDEX IF NOT EXISTS outbox_issue_status ON outbox(issue_id, status);

        -- One row per issue whose recipient list was frozen (freezing happens once).
        CREATE TABLE IF NOT EXISTS outbox_issues (
            issue_id INTEGER PRIMARY KEY,
            frozen_at TEXT NOT NULL,
            recipients INTEGER NOT NULL
        );

        -- Bounce and complaint reports already applied (by the report's Message-ID).
        CREATE TABLE IF NOT EXISTS bounce_log (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL,
            email_hash TEXT NOT NULL,
            kind TEXT NOT NULL,                    -- hard, soft, complaint
            status TEXT,                           -- DSN status such as 5.1.1
            diagnostic TEXT,
            at TEXT NOT NULL,
            UNIQUE (report_id, email_hash)
        );
        """
    )


@migration
def m300_tagging_clusters(db: sqlite_utils.Database) -> None:
    """Story clusters (issue 3): one row per cluster, plus the fingerprints and LSH keys that let
    each ingest batch be matched against the stored window without rebuilding an index."""
    db.executescript(
        """
        -- items.cluster_id = clusters.id = the id of the item that founded the cluster.
        CREATE TABLE IF NOT EXISTS clusters (
            id INTEGER PRIMARY KEY,
            representative_id INTEGER NOT NULL,  -- earliest complete (full-text) item, else earliest
            size INTEGER NOT NULL,
            first_at TEXT,                       -- earliest published (or fetched) of its items
            last_at TEXT
        );
        CREATE TABLE IF NOT EXISTS cluster_fingerprints (
            item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
            at REAL NOT NULL,                    -- days since 1970 (published, else fetched)
            complete INTEGER NOT NULL,
            relevant INTEGER NOT NULL,
            text_sig BLOB NOT NULL,              -- MinHash of word 3-shingles (64 x uint32)
            anchors TEXT NOT NULL,               -- names, numbers, concepts (0x1f-separated)
            regions TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS cluster_keys (
            key INTEGER NOT NULL,                -- LSH band hash or anchor hash
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            at REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS cluster_keys_key ON cluster_keys(key, at);
        CREATE INDEX IF NOT EXISTS cluster_keys_item ON cluster_keys(item_id);
        """
    )


@migration
def m501_web_search_index(db: sqlite_utils.Database) -> None:
    """Archive search (issue 5): a narrow covering index so filters, date order and facet counts
    read a few small index pages per matched item instead of the item's whole row."""
    db.execute("CREATE INDEX IF NOT EXISTS items_search_cover ON items(id, source, language, "
               "published, fetched_at, relevant)")


@migration
def m301_tagging_cluster_df(db: sqlite_utils.Database) -> None:
    """Document frequency of each lede stem, so rare shared words weigh most in story matching."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS cluster_df (
            stem TEXT PRIMARY KEY,
            df INTEGER NOT NULL
        );
        """
    )


@migration
def m502_web_source_volume_index(db: sqlite_utils.Database) -> None:
    """Source health (issue 5): weekly volume per source without scanning item_sources."""
    db.execute("CREATE INDEX IF NOT EXISTS item_sources_seen ON item_sources(first_seen, source)")


@migration
def m302_tagging_fts_update_trigger(db: sqlite_utils.Database) -> None:
    """Re-index an item in items_fts only when its title, summary or text change: tagging and
    clustering update other columns of every item, which re-indexed the whole text each time."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'items_au'").fetchone()
    if row is None or " OF " in row[0].upper():
        return
    db.executescript(
        """
        DROP TRIGGER IF EXISTS "items_au";
        CREATE TRIGGER IF NOT EXISTS "items_au" AFTER UPDATE OF "title", "summary", "text" ON "items"
        BEGIN
          INSERT INTO "items_fts" ("items_fts", rowid, "title", "summary", "text")
            VALUES('delete', old.rowid, old."title", old."summary", old."text");
          INSERT INTO "items_fts" (rowid, "title", "summary", "text")
            VALUES (new.rowid, new."title", new."summary", new."text");
        END;
        """
    )


@migration
def m503_web_source_volume_per_source(db: sqlite_utils.Database) -> None:
    """Source health (issue 5): a source's weekly volume is a range count on this index (the
    crawl's per-source totals in store.py use it too)."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS item_sources_by_source ON item_sources(source, first_seen)"
    )


@migration
def m600_web_item_sources_changes(db: sqlite_utils.Database) -> None:
    """Source health (issue 5): a counter of rows of item_sources updated or deleted, so the web
    desk's in-memory weekly volumes (archive_queries.SourceVolumes) know when to reload; inserts
    need none (their rowids grow), so ingest pays nothing."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS web_item_sources_changes (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n INTEGER NOT NULL
        );
        INSERT OR IGNORE INTO web_item_sources_changes (id, n) VALUES (1, 0);
        CREATE TRIGGER IF NOT EXISTS item_sources_changed_au AFTER UPDATE ON item_sources
        BEGIN
          UPDATE web_item_sources_changes SET n = n + 1 WHERE id = 1;
        END;
        CREATE TRIGGER IF NOT EXISTS item_sources_changed_ad AFTER DELETE ON item_sources
        BEGIN
          UPDATE web_item_sources_changes SET n = n + 1 WHERE id = 1;
        END;
        """
    )


@migration
def m303_tagging_cluster_keys_cover(db: sqlite_utils.Database) -> None:
    """Story matching at ingest counts, per candidate key, the items that carry it in the window:
    with item_id in the index it reads no table rows (half the time of that query on 2,000 items,
    more once an archive no longer fits in memory). The index it replaces is a prefix of it."""
    db.executescript(
        """
        CREATE INDEX IF NOT EXISTS cluster_keys_cover ON cluster_keys(key, at, item_id);
        DROP INDEX IF EXISTS cluster_keys_key;
        """
    )


@migration
def m304_tag_reviews(db: sqlite_utils.Database) -> None:
    """A curator's verdict on one item's tags (issue 3): it overrides the tagger for that item at
    every later ingest and `monitor retag`, and the reviewed items are a labelled set drawn from
    the archive itself (`monitor tags reviewed`). The latest row of an item applies; the earlier
    ones are its history."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS tag_reviews (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            relevant INTEGER NOT NULL,           -- 1: about migration or asylum; 0: not
            regions TEXT NOT NULL,               -- JSON list of region slugs (parents implied)
            topics TEXT NOT NULL,                -- JSON list of topic slugs
            reviewer TEXT NOT NULL,
            reviewed_at TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX IF NOT EXISTS tag_reviews_item ON tag_reviews(item_id, id);
        """
    )
