"""Hostile servers and broken feeds: each leaves the crawl alive, records a sentence, loses nothing.

All hostile sources run in ONE crawl next to a good source, which must not be disturbed.
"""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import quote

import pytest

from tests.helpers import DATA, feed_source, run_monitor, write_config
from tests.servers import rss

CRAWL = {"timeout": "10s", "retries": 0, "max_bytes": 2_000_000, "parse_timeout": "15s",
         "concurrency": 32}


def _redirect(site, target: str) -> str:
    return site.url("/hostile/redirect?to=" + quote(target, safe=""))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    from tests.servers import Site

    site = Site().start()
    site.prepare_bombs()
    tmp = tmp_path_factory.mktemp("hostile")
    port = site.port
    good = site.add("/good.xml", rss([{"title": f"Good {i}", "link": site.url(f"/good/{i}")}
                                      for i in range(3)]))
    malformed = DATA / "feeds" / "malformed"
    real = DATA / "feeds" / "real"
    guardian = (real / "feeder__rss_theguardian.xml").read_bytes()
    lol = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
           + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
           + ']><rss version="2.0"><channel><title>&i;</title><item><title>&i;</title>'
           f'<link>{site.url("/lol/1")}</link></item></channel></rss>')
    xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "' + site.url("/secret") + '">'
           '<!ENTITY f SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel><title>t</title>'
           f'<item><title>&x;&f;</title><link>{site.url("/xxe/1")}</link></item></channel></rss>')
    big = rss([{"title": f"Entry {i}", "link": site.url(f"/big/{i}")} for i in range(20000)])
    dates = rss([
        {"title": "No date", "link": site.url("/d/1")},
        {"title": "Year 1066", "link": site.url("/d/2"), "pubDate": "Sat, 14 Oct 1066 09:00:00 GMT"},
        {"title": "Far future", "link": site.url("/d/3"), "pubDate": "Fri, 01 Jan 2999 00:00:00 GMT"},
        {"title": "Garbage", "link": site.url("/d/4"), "pubDate": "yesterday-ish"},
        {"title": "Fine", "link": site.url("/d/5"), "pubDate": "Mon, 30 Nov 2026 10:00:00 GMT"},
    ])
    author = rss([{"title": "Long author", "link": site.url("/au/1"), "author": "x" * 65536}])
    html_titles = rss([
        {"title": "&lt;script&gt;alert(1)&lt;/script&gt;<![CDATA[<b>Bold</b> &amp; brave]]>",
         "link": site.url("/t/1")},
        {"title": "Evil link", "link": "javascript:alert(document.cookie)"},
        {"title": "Data link", "link": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="},
    ])
    routes = {
        "never-answers": site.url("/hostile/hang"),
        "drips": site.url("/hostile/drip"),
        "one-gigabyte": site.url("/hostile/huge"),
        "one-gigabyte-chunked": site.url("/hostile/huge-chunked"),
        "gzip-bomb": site.url("/hostile/gzip-bomb"),
        "deflate-bomb": site.url("/hostile/deflate-bomb"),
        "brotli-bomb": site.url("/hostile/br-bomb"),
        "redirect-loop": site.url("/hostile/loop-a"),
        "to-file-scheme": _redirect(site, "file:///etc/passwd"),
        "to-ftp-scheme": _redirect(site, f"ftp://127.0.0.1:{port}/feed"),
        "to-javascript": _redirect(site, "javascript:alert(1)"),
        "to-other-loopback": _redirect(site, f"http://127.0.0.2:{port}/good.xml"),
        "to-ipv6-loopback": _redirect(site, f"http://[::1]:{port}/good.xml"),
        "to-ipv4-mapped": _redirect(site, f"http://[::ffff:127.0.0.2]:{port}/good.xml"),
        "to-ipv4-mapped-hex": _redirect(site, f"http://[::ffff:7f00:2]:{port}/good.xml"),
        # refused before any connection: the tests' config fetches only allow_hosts
        "to-public-address": _redirect(site, "http://8.8.8.8/feed.xml"),
        "connection-reset": site.url("/hostile/reset"),
        "html-as-feed": site.add("/page.xml", (malformed / "node-feedparser__notafeed.html").read_bytes()),
        "truncated-xml": site.add("/truncated.xml", guardian[: len(guardian) * 6 // 10]),
        "billion-laughs": site.add("/lol.xml", lol),
        "external-entities": site.add("/xxe.xml", xxe),
        "wrong-charset": site.add("/latin1.xml",
                                  (malformed / "miniflux__no_encoding_ISO-8859-1.xml").read_bytes(),
                                  content_type="application/rss+xml; charset=utf-8"),
        "gzip-without-header": site.add(
            "/gz.xml", (malformed / "node-feedparser__invalid-characters-gzipped.xml").read_bytes()),
        "empty-document": site.add("/empty.xml", b""),
        "http-500": site.add("/500.xml", "oops", status=500),
        "twenty-thousand": site.add("/big.xml", big),
        "absurd-dates": site.add("/dates.xml", dates),
        "64k-author": site.add("/author.xml", author),
        "html-titles": site.add("/titles.xml", html_titles),
    }
    sources = [feed_source("good", good, full_text=False)]
    sources += [feed_source(name, url, full_text=False) for name, url in routes.items()]
    config = write_config(tmp, sources=sources, crawl=CRAWL)
    started = time.monotonic()
    result = run_monitor(config, "crawl", timeout=300)
    elapsed = time.monotonic() - started
    conn = sqlite3.connect(tmp / "data" / "monitor.db")
    conn.row_factory = sqlite3.Row
    yield {"result": result, "conn": conn, "site": site, "elapsed": elapsed, "names": list(routes)}
    conn.close()
    site.close()


def _health(run, name):
    return run["conn"].execute("SELECT * FROM sources WHERE name = ?", [name]).fetchone()


def _log(run, name):
    return [r["error"] for r in run["conn"].execute("SELECT error FROM fetch_log WHERE source = ?", [name])]


def _titles(run, name):
    return [r[0] for r in run["conn"].execute("SELECT title FROM items WHERE source = ? ORDER BY id", [name])]


def test_crawl_survives_and_exits_zero(hostile_run):
    result = hostile_run["result"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "good: 3 new, 0 already seen" in result.stdout
    # One line per source, failures included.
    for name in hostile_run["names"]:
        assert f"\n{name}: " in "\n" + result.stdout
    # The hanging and dripping servers cost their timeout, not the whole run.
    assert hostile_run["elapsed"] < 120


@pytest.mark.parametrize("name,expected", [
    ("never-answers", "did not send a complete answer within 10 seconds"),
    ("drips", "did not send a complete answer within 10 seconds"),
    ("one-gigabyte", "larger than 2 MB"),
    ("one-gigabyte-chunked", "larger than 2 MB"),
    ("gzip-bomb", "larger than 2 MB"),
    ("deflate-bomb", "larger than 2 MB"),
    ("brotli-bomb", "larger than 2 MB"),
    ("redirect-loop", "redirects too many times"),
    ("to-file-scheme", "not an http(s) address"),
    ("to-ftp-scheme", "not an http(s) address"),
    ("to-javascript", "not an http(s) address"),
    ("to-other-loopback", "private or local network address 127.0.0.2"),
    ("to-ipv6-loopback", "private or local network address ::1"),
    ("to-ipv4-mapped", "private or local network address ::ffff:127.0.0.2"),
    ("to-ipv4-mapped-hex", "private or local network address ::ffff:7f00:2"),
    ("to-public-address", "leads to 8.8.8.8, which is not in [crawl] allow_hosts"),
    ("connection-reset", "closed the connection"),
    ("html-as-feed", "returns a web page, not a feed"),
    ("truncated-xml", "malformed"),
    ("billion-laughs", "limit on input amplification"),
    ("empty-document", "empty"),
    ("http-500", "HTTP 500"),
    ("twenty-thousand", "only the first 5,000 were read"),
])
def test_each_bad_input_is_recorded_as_a_sentence(hostile_run, name, expected):
    health = _health(hostile_run, name)
    log = _log(hostile_run, name)
    assert log, f"nothing in fetch_log for {name}"
    assert any(expected in entry for entry in log), log
    assert expected in (health["last_error"] or ""), dict(health)
    for sentence in log:
        assert sentence.endswith((".", ")")) and "Traceback" not in sentence


def test_truncated_feed_keeps_what_it_could_read(hostile_run):
    assert len(_titles(hostile_run, "truncated-xml")) > 3


def test_external_entities_are_not_fetched(hostile_run):
    assert hostile_run["site"].hits("/secret") == 0
    for title in _titles(hostile_run, "external-entities"):
        assert "root:" not in title


def test_wrong_charset_still_decodes_text(hostile_run):
    titles = _titles(hostile_run, "wrong-charset")
    assert titles and not any("\ufffd" in t for t in titles)
    assert any(ch in "".join(titles) for ch in "éèàçê")


def test_absurd_dates_are_dropped_not_invented(hostile_run):
    rows = hostile_run["conn"].execute(
        "SELECT title, published FROM items WHERE source = 'absurd-dates' ORDER BY id").fetchall()
    assert dict(rows) == {"No date": None, "Year 1066": None, "Far future": None, "Garbage": None,
                          "Fine": "2026-11-30T10:00:00Z"}


def test_long_author_is_bounded(hostile_run):
    rows = hostile_run["conn"].execute("SELECT author FROM items WHERE source = '64k-author'").fetchall()
    assert len(rows) == 1 and len(rows[0][0]) <= 300


def test_titles_are_text_and_unsafe_links_never_stored(hostile_run):
    # RSS titles are HTML: tags (and script bodies) go, the text stays.
    assert _titles(hostile_run, "html-titles") == ["Bold & brave"]
    urls = [r[0] for r in hostile_run["conn"].execute("SELECT url FROM items")]
    assert all(u.startswith(("http://", "https://")) for u in urls)
    assert any("no http(s) link" in e for e in _log(hostile_run, "html-titles"))


def test_big_feed_is_bounded(hostile_run):
    count = hostile_run["conn"].execute(
        "SELECT count(*) FROM items WHERE source = 'twenty-thousand'").fetchone()[0]
    assert count == 5000


def test_database_is_intact(hostile_run):
    assert hostile_run["conn"].execute("PRAGMA integrity_check").fetchone()[0] == "ok"
