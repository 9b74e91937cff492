"""`monitor crawl` against a real loopback site: items land once, with their article text."""

from __future__ import annotations

import sqlite3

from tests.helpers import feed_source, run_monitor, write_config
from tests.servers import rss


def _publish(site, pages, path="/feed.xml", link=lambda i, p: None, etag='"v1"'):
    items = []
    for i, page in enumerate(pages):
        site.add(f"/news/{page['name']}", page["body"], content_type="text/html; charset=utf-8")
        items.append({"title": page["title"].replace("&", "&amp;").replace("<", "&lt;"),
                      "link": link(i, page) or site.url(f"/news/{page['name']}"),
                      "description": "Summary from the feed.",
                      "pubDate": "Mon, 30 Nov 2026 10:00:00 GMT"})
    return site.add(path, rss(items), etag=etag)


def _rows(config_dir, sql, params=()):
    conn = sqlite3.connect(config_dir / "data" / "monitor.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_crawl_stores_articles_with_extracted_text(tmp_path, site, article_pages):
    feed = _publish(site, article_pages[:4])
    config = write_config(tmp_path, sources=[feed_source("fixture", feed)])
    result = run_monitor(config, "crawl")
    assert result.returncode == 0, result.stderr
    assert "fixture: 4 new, 0 already seen" in result.stdout
    rows = _rows(tmp_path, "SELECT url, title, text, full_text, published FROM items ORDER BY id")
    assert len(rows) == 4
    for _url, _title, text, full_text, published in rows:
        assert full_text == 1 and len(text) > 300
        assert published == "2026-11-30T10:00:00Z"
    # Stored under the address it was fetched from: the pages' canonical links name another
    # site (they were captured elsewhere), and a cross-site canonical is not trusted.
    assert sorted(r[0] for r in rows) == sorted(site.url(f"/news/{p['name']}") for p in article_pages[:4])


def test_page_canonical_link_on_the_same_site_makes_one_row(tmp_path, site, article_pages):
    import re

    page = article_pages[2]
    body = re.sub(rb"<link[^>]+canonical[^>]*>|<meta[^>]+og:url[^>]*>", b"", page["body"], flags=re.I)
    canonical = site.url("/story/one")
    body = body.replace(b"<head>", f'<head><link rel="canonical" href="{canonical}">'.encode(), 1)
    site.add("/amp/story/one", body, content_type="text/html; charset=utf-8")
    site.add("/story/one", body, content_type="text/html; charset=utf-8")
    feed_a = site.add("/a.xml", rss([{"title": "AMP", "link": site.url("/amp/story/one")}]))
    feed_b = site.add("/b.xml", rss([{"title": "Plain", "link": canonical + "?utm_campaign=x"}]))
    config = write_config(tmp_path, sources=[feed_source("feed-a", feed_a)])
    assert "feed-a: 1 new" in run_monitor(config, "crawl").stdout
    config = write_config(tmp_path, sources=[feed_source("feed-b", feed_b)])
    assert "feed-b: 0 new, 1 already seen" in run_monitor(config, "crawl").stdout
    assert _rows(tmp_path, "SELECT url FROM items") == [(canonical,)]


def test_second_crawl_of_an_unchanged_feed_costs_one_request(tmp_path, site, article_pages):
    feed = _publish(site, article_pages[:3])
    config = write_config(tmp_path, sources=[feed_source("fixture", feed)])
    assert run_monitor(config, "crawl").returncode == 0
    requests_before = len(site.requests)
    result = run_monitor(config, "crawl")
    assert "fixture: unchanged since the last crawl" in result.stdout
    new_requests = [path for path, _ in site.requests[requests_before:] if path != "/robots.txt"]
    assert new_requests == ["/feed.xml"]
    assert site.requests[-1][1].get("If-None-Match") == '"v1"'


def test_same_article_in_two_feeds_and_url_variants_is_one_row(tmp_path, site, article_pages):
    page = article_pages[0]
    site.add(f"/news/{page['name']}", page["body"], content_type="text/html; charset=utf-8")
    base = site.url(f"/news/{page['name']}")
    variants = [base + "?utm_source=rss&utm_medium=feed", base + "/", base + "/amp",
                base + "#comments", base + "?fbclid=abc"]
    feed_a = site.add("/a.xml", rss([{"title": "A", "link": variants[0]},
                                     {"title": "A again", "link": variants[1]}]))
    feed_b = site.add("/b.xml", rss([{"title": "B", "link": v} for v in variants[2:]]))
    config = write_config(tmp_path, sources=[feed_source("feed-a", feed_a),
                                             feed_source("feed-b", feed_b)])
    assert run_monitor(config, "crawl").returncode == 0
    assert _rows(tmp_path, "SELECT count(*) FROM items") == [(1,)]
    # Both feeds are remembered as having carried it.
    assert _rows(tmp_path, "SELECT count(*) FROM item_sources") == [(2,)]
    # A later crawl that meets the article under its canonical URL adds nothing.
    canonical = _rows(tmp_path, "SELECT url FROM items")[0][0]
    feed_c = site.add("/c.xml", rss([{"title": "C", "link": canonical.replace("https://", "http://")}]))
    config = write_config(tmp_path, sources=[feed_source("feed-c", feed_c)])
    result = run_monitor(config, "crawl")
    assert "feed-c: 0 new, 1 already seen" in result.stdout
    assert _rows(tmp_path, "SELECT count(*) FROM items") == [(1,)]


def test_item_whose_page_fails_is_stored_from_its_feed_entry(tmp_path, site):
    feed = site.add("/feed.xml", rss([
        {"title": "Pushbacks at the border &lt;b&gt;reported&lt;/b&gt;", "link": site.url("/gone"),
         "description": "Forty people were pushed back, the NGO said."},
    ]))
    config = write_config(tmp_path, sources=[feed_source("fixture", feed)])
    result = run_monitor(config, "crawl")
    assert result.returncode == 0
    assert "1 new" in result.stdout and "not fetched" in result.stdout
    rows = _rows(tmp_path, "SELECT title, summary, full_text, extract_error FROM items")
    assert rows == [("Pushbacks at the border reported", "Forty people were pushed back, the NGO said.",
                     0, "The server answered HTTP 404 (Not Found).")]
    log = _rows(tmp_path, "SELECT source, url, error FROM fetch_log")
    assert log == [("fixture", site.url("/gone"), "Article page: The server answered HTTP 404 (Not Found).")]


def test_full_text_false_stores_feed_entries_without_fetching_pages(tmp_path, site):
    feed = site.add("/feed.xml", rss([{"title": f"Entry {i}", "link": site.url(f"/e/{i}")}
                                      for i in range(5)]))
    config = write_config(tmp_path, sources=[feed_source("fixture", feed, full_text=False)])
    assert "5 new" in run_monitor(config, "crawl").stdout
    assert not [p for p, _ in site.requests if p.startswith("/e/")]


def test_listing_page_source_follows_selected_links(tmp_path, site, article_pages):
    links = []
    for page in article_pages[:2]:
        site.add(f"/news/{page['name']}", page["body"], content_type="text/html; charset=utf-8")
        links.append(f'<article><a href="/news/{page["name"]}">{page["title"]}</a></article>')
    listing = site.add("/list", "<html><body><nav><a href='/about'>About</a></nav>"
                       + "".join(links) + "<a href='javascript:alert(1)'>x</a></body></html>",
                       content_type="text/html; charset=utf-8")
    config = write_config(tmp_path, sources=[{"name": "listing", "url": listing, "kind": "page",
                                              "link_selector": "article a"}])
    result = run_monitor(config, "crawl")
    assert "listing: 2 new" in result.stdout, result.stdout + result.stderr
    assert not [p for p, _ in site.requests if p == "/about"]


def test_news_sitemap_source(tmp_path, site, article_pages):
    page = article_pages[1]
    site.add(f"/news/{page['name']}", page["body"], content_type="text/html; charset=utf-8")
    sitemap = site.add("/sitemap-news.xml", f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>{site.url('/news/' + page['name'])}</loc>
    <news:news><news:publication><news:name>Fixture</news:name><news:language>fr</news:language>
    </news:publication><news:publication_date>2026-11-29T08:00:00+01:00</news:publication_date>
    <news:title>Titre du sitemap</news:title></news:news></url>
</urlset>""", content_type="application/xml")
    config = write_config(tmp_path, sources=[{"name": "sitemap", "url": sitemap, "kind": "sitemap"}])
    assert "sitemap: 1 new" in run_monitor(config, "crawl").stdout
    assert _rows(tmp_path, "SELECT title, published, full_text FROM items") == [
        ("Titre du sitemap", "2026-11-29T07:00:00Z", 1)]


def test_crawl_of_one_named_source_and_unknown_source(tmp_path, site):
    feed = site.add("/feed.xml", rss([{"title": "One", "link": site.url("/e/1")}]))
    config = write_config(tmp_path, sources=[feed_source("one", feed, full_text=False),
                                             feed_source("two", site.url("/missing.xml"))])
    result = run_monitor(config, "crawl", "--source", "one")
    assert result.returncode == 0
    assert "one: 1 new" in result.stdout and "two" not in result.stdout
    result = run_monitor(config, "crawl", "--source", "nope")
    assert result.returncode == 1
    assert "Unknown source(s): nope" in result.stderr and "Traceback" not in result.stderr


def test_progress_display_on_a_terminal_only(tmp_path, site):
    import os
    import pty
    import subprocess
    import sys

    feed = site.add("/feed.xml", rss([{"title": "One", "link": site.url("/e/1")}]))
    config = write_config(tmp_path, sources=[feed_source("fixture", feed, full_text=False)])
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "crawl"],
                            stdout=subprocess.PIPE, stderr=secondary, text=True)
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    stdout = proc.communicate(timeout=120)[0]
    os.close(primary)
    assert proc.returncode == 0
    assert b"Crawling" in screen  # rich's live display, drawn on the terminal
    assert "fixture: 1 new" in stdout and "Crawling" not in stdout
    # Without a terminal there is no progress display at all.
    result = run_monitor(config, "crawl")
    assert "Crawling" not in result.stderr


def test_article_pages_in_flight_are_bounded_across_sources(tmp_path, site, article_pages):
    """[crawl] concurrency bounds the pages a whole crawl holds, not each source's: every source
    is its own Scrapy crawler, and without the crawl-wide gate four sources fetched (and held in
    memory, waiting for the extraction workers) four times as many pages."""
    sources = []
    for f in range(4):
        items = []
        for i, page in enumerate(article_pages[:4]):
            path = f"/news/{f}-{i}-{page['name']}"
            site.add(path, page["body"], content_type="text/html; charset=utf-8", delay=0.3)
            items.append({"title": f"Report {f}-{i}", "link": site.url(path)})
        sources.append(feed_source(f"feed-{f}", site.add(f"/feed-{f}.xml", rss(items))))
    config = write_config(tmp_path, sources=sources,
                          crawl={"concurrency": 3, "concurrency_per_host": 8})
    result = run_monitor(config, "crawl")
    assert result.returncode == 0, result.stderr
    assert site.peak_in_flight["news"] == 3
    assert _rows(tmp_path, "SELECT count(*), sum(full_text) FROM items") == [(16, 16)]


def _processes_with(marker: str) -> list[str]:
    """Command lines of running processes whose environment carries `marker` (Linux /proc)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_a_crawl_leaves_no_process_behind(tmp_path, site, article_pages):
    # The extraction server starts loading with the crawl; a crawl that extracts nothing must
    # stop it rather than leave it loading (seconds of CPU, and holding the crawl's output open)
    # after `monitor crawl` has exited.
    import os
    import subprocess
    import sys
    import time
    import uuid

    feed = _publish(site, article_pages[:2])
    config = write_config(tmp_path, sources=[feed_source("fixture", feed)])
    for expect in ("2 new", "unchanged since the last crawl"):
        marker = uuid.uuid4().hex
        out = tmp_path / f"{marker}.txt"
        with out.open("w") as stdout:
            crawl = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config),
                                      "crawl"], stdout=stdout, stderr=subprocess.STDOUT,
                                     env={**os.environ, "MONITOR_TEST_RUN": marker})
            assert crawl.wait(timeout=120) == 0
        # multiprocessing's resource tracker ends on its own when the crawl's pipe closes.
        deadline = time.monotonic() + 1.0
        while (left := _processes_with(f"MONITOR_TEST_RUN={marker}")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert expect in out.read_text(), out.read_text()
        assert left == []
