"""The scheduler: the database decides what is due (pure); `monitor run --once` crawls it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import Source
from monitor.scheduler import MAX_BACKOFF, due_sources, next_due
from tests.helpers import feed_source, run_monitor, write_config
from tests.servers import rss

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _source(name="ngo", every=3600.0, **kw) -> Source:
    return Source(name=name, url=f"https://example.org/{name}.xml", every=every, **kw)


def test_never_crawled_source_is_due_now():
    assert next_due(_source(), None, 0) is None
    assert due_sources([_source()], {}, NOW) == [_source()]
    assert due_sources([_source()], {"ngo": {"last_attempt": None}}, NOW) == [_source()]


def test_recently_crawled_source_is_not_due():
    health = {"ngo": {"last_attempt": _iso(NOW - timedelta(minutes=10)), "consecutive_failures": 0}}
    assert due_sources([_source(every=3600)], health, NOW) == []
    assert next_due(_source(every=3600), health["ngo"]["last_attempt"], 0) == NOW + timedelta(
        minutes=50
    )


def test_source_is_due_once_its_interval_has_passed():
    health = {"ngo": {"last_attempt": _iso(NOW - timedelta(hours=1)), "consecutive_failures": 0}}
    assert [s.name for s in due_sources([_source(every=3600)], health, NOW)] == ["ngo"]


def test_disabled_and_running_sources_are_never_due():
    assert due_sources([_source(enabled=False)], {}, NOW) == []
    assert due_sources([_source()], {}, NOW, running={"ngo"}) == []


@pytest.mark.parametrize(
    ("failures", "hours"),
    [
        (0, 1),
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 8),
        (5, 16),
        (6, 24),
        (7, 24),
        (50, 24),
    ],
)
def test_failing_source_backs_off_exponentially_up_to_a_day(failures, hours):
    last = _iso(NOW)
    assert next_due(_source(every=3600), last, failures) == NOW + timedelta(hours=hours)


def test_back_off_never_shortens_a_long_interval():
    weekly = _source(every=7 * 86400)
    assert next_due(weekly, _iso(NOW), 30) == NOW + timedelta(days=7)
    assert timedelta(hours=24) == MAX_BACKOFF


def test_longest_overdue_first():
    sources = [_source("a"), _source("b"), _source("c")]
    health = {
        "a": {"last_attempt": _iso(NOW - timedelta(hours=2))},
        "b": {"last_attempt": None},
        "c": {"last_attempt": _iso(NOW - timedelta(hours=5))},
    }
    assert [s.name for s in due_sources(sources, health, NOW)] == ["b", "c", "a"]


def test_after_a_restart_nothing_is_due_twice():
    """The scheduler records last_attempt before crawling; a restart reads the same rows."""
    sources = [_source("a", every=1800), _source("b", every=6 * 3600), _source("c", every=3600)]
    health: dict[str, dict] = {}
    first = due_sources(sources, health, NOW)
    assert {s.name for s in first} == {"a", "b", "c"}
    for source in first:  # what CrawlScheduler.tick stores
        health[source.name] = {"last_attempt": _iso(NOW), "consecutive_failures": 0}
    restarted = dict(health)  # a new process sees the same rows
    assert due_sources(sources, restarted, NOW + timedelta(seconds=30)) == []
    assert [s.name for s in due_sources(sources, restarted, NOW + timedelta(minutes=30))] == ["a"]
    assert {s.name for s in due_sources(sources, restarted, NOW + timedelta(hours=1))} == {"a", "c"}


def test_due_sources_is_pure():
    sources = [_source("a")]
    health = {"a": {"last_attempt": _iso(NOW - timedelta(hours=3)), "consecutive_failures": 2}}
    snapshot = {k: dict(v) for k, v in health.items()}
    assert due_sources(sources, health, NOW) == due_sources(sources, health, NOW)
    assert health == snapshot


# -- `monitor run --once` against a loopback site --------------------------------------------------


def _rows(config_dir, sql):
    conn = sqlite3.connect(config_dir / "data" / "monitor.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_run_once_crawls_each_due_source_once_then_nothing(tmp_path, site):
    feed_a = site.add(
        "/a.xml",
        rss(
            [
                {
                    "title": f"Rescue {i} off Lampedusa",
                    "link": site.url(f"/a/{i}"),
                    "pubDate": "Mon, 30 Nov 2026 10:00:00 GMT",
                }
                for i in range(3)
            ]
        ),
    )
    feed_b = site.add("/b.xml", rss([{"title": "Pushback at Evros", "link": site.url("/b/1")}]))
    config = write_config(
        tmp_path,
        sources=[
            feed_source("feed-a", feed_a, full_text=False),
            feed_source("feed-b", feed_b, full_text=False, every="6h"),
            feed_source("paused", site.url("/paused.xml"), enabled=False),
        ],
    )
    result = run_monitor(config, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert site.hits("/a.xml") == 1 and site.hits("/b.xml") == 1 and site.hits("/paused.xml") == 0
    health = dict(_rows(tmp_path, "SELECT name, last_attempt IS NOT NULL FROM sources"))
    assert health == {"feed-a": 1, "feed-b": 1, "paused": 0}
    assert _rows(
        tmp_path,
        "SELECT name, consecutive_failures, last_success IS NOT NULL FROM sources "
        "WHERE enabled ORDER BY name",
    ) == [("feed-a", 0, 1), ("feed-b", 0, 1)]
    assert _rows(tmp_path, "SELECT count(*) FROM items") == [(4,)]

    again = run_monitor(config, "run", "--once")
    assert again.returncode == 0, again.stderr
    assert site.hits("/a.xml") == 1 and site.hits("/b.xml") == 1
    assert _rows(tmp_path, "SELECT count(*) FROM items") == [(4,)]


def test_run_once_records_a_failing_source_without_stopping_the_others(tmp_path, site):
    feed = site.add(
        "/ok.xml", rss([{"title": "Arrivals in the Canaries", "link": site.url("/ok/1")}])
    )
    config = write_config(
        tmp_path,
        sources=[
            feed_source("good", feed, full_text=False),
            feed_source("broken", site.url("/missing.xml")),
        ],
    )
    result = run_monitor(config, "run", "--once")
    assert result.returncode == 0, result.stderr
    rows = dict(
        (name, (failures, error))
        for name, failures, error in _rows(
            tmp_path, "SELECT name, consecutive_failures, last_error FROM sources"
        )
    )
    assert rows["good"] == (0, None)
    assert rows["broken"][0] == 1 and "404" in rows["broken"][1]
    assert _rows(tmp_path, "SELECT count(*) FROM items") == [(1,)]


def test_run_once_stops_a_hanging_source_at_its_time_limit(tmp_path, site):
    feed = site.add(
        "/ok.xml", rss([{"title": "Reception crisis in Ter Apel", "link": site.url("/ok/1")}])
    )
    config = write_config(
        tmp_path,
        sources=[
            feed_source("hangs", site.url("/hostile/hang"), full_text=False),
            feed_source("good", feed, full_text=False),
        ],
        crawl={"timeout": "120s", "retries": 0, "source_time_limit": "15s"},
    )
    result = run_monitor(config, "run", "--once", timeout=100)
    assert result.returncode == 0, result.stderr
    rows = {
        name: (failures, error)
        for name, failures, error in _rows(
            tmp_path, "SELECT name, consecutive_failures, last_error FROM sources"
        )
    }
    assert rows["good"] == (0, None)
    assert rows["hangs"] == (1, "The crawl of this source was stopped after 15 seconds.")
    assert _rows(tmp_path, "SELECT source, error FROM fetch_log") == [
        ("hangs", "The crawl of this source was stopped after 15 seconds.")
    ]
    assert _rows(tmp_path, "SELECT count(*) FROM items") == [(1,)]
