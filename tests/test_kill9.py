"""A kill -9 of a crawl at any moment leaves the archive intact, and the next crawl completes it."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

from tests.helpers import feed_source, run_monitor, write_config
from tests.servers import rss

PAGES = 120
CANONICAL = re.compile(rb"<link[^>]+canonical[^>]*>|<meta[^>]+(?:og:url|twitter:url)[^>]*>", re.I)


def _count(database) -> int:
    if not database.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM items").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return 0


def test_kill_minus_nine_mid_crawl_then_resume(tmp_path, site, article_pages):
    items = []
    for i in range(PAGES):
        page = article_pages[i % len(article_pages)]
        # Distinct URLs and distinct bodies: the canonical link must not merge them.
        body = CANONICAL.sub(b"", page["body"])
        site.add(f"/p/{i}", body, content_type="text/html; charset=utf-8", delay=0.05)
        items.append({"title": f"Story {i}", "link": site.url(f"/p/{i}")})
    feed = site.add("/feed.xml", rss(items), etag='"same"')
    config = write_config(tmp_path, sources=[feed_source("fixture", feed)],
                          crawl={"concurrency_per_host": 4})
    database = tmp_path / "data" / "monitor.db"
    # Kill at three moments of real progress (not fixed delays: a loaded machine starts slowly),
    # each time with writes in flight.
    for stored_at_kill in (1, 30, 70):
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "crawl",
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count(database) < stored_at_kill:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        conn = sqlite3.connect(database)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    conn = sqlite3.connect(database)
    stored_before = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    conn.close()
    assert stored_before < PAGES, "the kills came too late to interrupt anything"
    result = run_monitor(config, "crawl", timeout=300)
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(database)
    rows = conn.execute("SELECT url, full_text FROM items").fetchall()
    assert len(rows) == PAGES and len({url for url, _ in rows}) == PAGES
    assert all(full for _, full in rows)
    # Items are never duplicated in the full-text index either.
    assert conn.execute("SELECT count(*) FROM items_fts").fetchone()[0] == PAGES
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Only the pages that were missing were fetched again.
    fetched = sum(1 for path, _ in site.requests if path.startswith("/p/"))
    assert fetched < PAGES * 2
