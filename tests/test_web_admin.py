"""Source health for admins, roles on pages, and saved searches mailed to a loopback SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor import archive_queries as aq
from monitor import saved_searches
from monitor.config import load_config
from tests.fixtures_web import csrf_from, start_server
from tests.helpers import write_config
from tests.web_archive import SOURCES, insert_items


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_source(db, name: str, weekly: list[int], error: str | None = None, failures: int = 0):
    now = datetime.now(UTC)
    db.execute(
        """INSERT INTO sources (name, url, kind, language, every_seconds, last_success,
                  last_error, last_error_at, consecutive_failures) VALUES (?, ?, 'feed', 'en', 3600,
                  ?, ?, ?, ?)""",
        [
            name,
            f"https://{name}.example.org/feed",
            _stamp(now - timedelta(hours=2)),
            error,
            _stamp(now - timedelta(hours=1)) if error else None,
            failures,
        ],
    )
    ids = insert_items(db, sum(weekly), seed=len(name), url_prefix=name)
    k = 0
    for week, n in enumerate(weekly):  # oldest first; the last entry is the past 7 days
        for _ in range(n):
            seen = now - timedelta(days=7 * (len(weekly) - 1 - week) + 3)
            db.execute(
                "UPDATE item_sources SET source = ?, first_seen = ? WHERE item_id = ?",
                [name, _stamp(seen), ids[k]],
            )
            k += 1


def test_source_health_shows_errors_volume_and_a_drop_warning(web):
    _add_source(web.db, "steady-feed", [10, 11, 9, 10, 12, 10, 11, 10])
    _add_source(
        web.db,
        "broken-feed",
        [10, 12, 11, 10, 9, 12, 10, 1],
        error="The server did not answer within 30 seconds.",
        failures=4,
    )
    web.add_user("root", "admin")
    page = web.login("root").get("/admin/sources")
    assert page.status_code == 200
    assert "The server did not answer within 30 seconds." in page.text
    assert "Volume dropped: 1 items in the last 7 days" in page.text
    report = {r["name"]: r for r in aq.source_report(web.db)}
    assert report["steady-feed"]["warning"] is None
    assert report["steady-feed"]["weekly"][-1] == 10
    assert "Failing: 4 crawls in a row" in report["broken-feed"]["warning"]


def test_roles_limit_pages(web):
    web.add_user("ana", "analyst")
    analyst = web.login("ana")
    assert analyst.get("/admin/sources").status_code == 403
    assert analyst.get("/search").status_code == 200
    nav = analyst.get("/").text
    assert "Source health" not in nav and "Search" in nav


def test_saved_search_mails_new_matches(web_config, smtp_server, tmp_path, monkeypatch):
    config = load_config(
        write_config(
            tmp_path / "mail",
            smtp=smtp_server.smtp_settings,
            storage={"database": str(web_config.storage.database)},
        )
    )
    server, thread, base_url = start_server(config)
    from monitor.store import open_db
    from monitor.web import auth
    from tests.fixtures_web import PASSWORD, WebServer

    db = open_db(config.storage.database, migrate=False)
    web = WebServer(base_url, config, db, server, thread)
    try:
        auth.add_user(db, "ana", PASSWORD, "analyst", email="ana@ngo.example")
        web.users["ana"] = PASSWORD
        client = web.login("ana")
        page = client.get("/saved", params={"from": "q=Hamburg"})
        response = client.post(
            "/saved",
            data={
                "csrf_token": csrf_from(page.text),
                "search": "q=Hamburg",
                "name": "Hamburg watch",
                "frequency": "daily",
                "email": "ana@ngo.example",
            },
        )
        assert response.status_code == 303
        assert "Hamburg watch" in client.get("/saved").text
        created = datetime.now(UTC)
        # Nothing is due before a day has passed.
        assert saved_searches.run_due(db, config, created + timedelta(hours=1)) == []
        # New items, fetched after the search was saved:
        insert_items(db, 120, url_prefix="new", fetched=created + timedelta(hours=2))
        done = saved_searches.run_due(db, config, created + timedelta(days=1, minutes=1))
        assert len(done) == 1 and done[0][1] > 0
        assert smtp_server.handler.wait_for(1, 10)
        mail = smtp_server.handler.parsed()[0]
        assert mail["To"].addresses[0].addr_spec == "ana@ngo.example"
        assert "Hamburg watch" in mail["Subject"]
        body = mail.get_body(("plain",)).get_content()
        assert "/search?q=Hamburg" in body
        # The next day nothing new: no second mail.
        saved_searches.run_due(db, config, created + timedelta(days=2, minutes=2))
        assert smtp_server.handler.count() == 1
    finally:
        server.should_exit = True
        thread.join(10)
        db.close()


def test_saved_search_with_a_malformed_query_is_refused(web):
    web.add_user("ana", "analyst")
    client = web.login("ana")
    page = client.get("/saved")
    response = client.post(
        "/saved",
        data={
            "csrf_token": csrf_from(page.text),
            "search": 'q="unclosed',
            "name": "bad",
            "frequency": "weekly",
            "email": "a@b.example",
        },
    )
    assert response.status_code == 400 and "unclosed quotation mark" in response.text


def test_weekly_volumes_kept_in_memory_equal_the_range_counts(web):
    db = web.db
    _add_source(db, "steady-feed", [10, 11, 9, 10, 12, 10, 11, 10])
    _add_source(db, "growing-feed", [1, 2, 3, 4, 5, 6, 7, 8])
    volumes = aq.SourceVolumes()
    now = datetime.now(UTC)

    def same(at: datetime) -> None:
        counted = [(r["name"], r["weekly"]) for r in aq.source_report(db, now=at)]
        kept = [(r["name"], r["weekly"]) for r in aq.source_report(db, now=at, volumes=volumes)]
        assert kept == counted
        assert any(sum(weekly) for _, weekly in counted)

    same(now)
    same(now + timedelta(days=3))  # time moves on: items move from one week to the previous
    same(now + timedelta(days=40))  # far on: the kept rows are read again from a later floor
    same(now - timedelta(days=20))  # an earlier moment than any before
    same(now)
    for name in SOURCES:  # the sources insert_items rotates through, shown in the report too
        db.execute(
            "INSERT OR IGNORE INTO sources (name, url, kind, every_seconds) "
            "VALUES (?, ?, 'feed', 60)",
            [name, f"https://{name}.example.org/feed"],
        )
    ids = insert_items(db, 6, seed=9, url_prefix="late", days=5)
    same(now)  # new rows: caught up by rowid
    marks = ",".join("?" * len(ids))
    db.execute(f"UPDATE item_sources SET source = 'growing-feed' WHERE item_id IN ({marks})", ids)
    same(now)  # moved to another source: noticed through the counter of migration m600
    db.execute(
        "UPDATE item_sources SET first_seen = ? WHERE item_id = ?",
        [_stamp(now - timedelta(days=50)), ids[2]],
    )
    same(now)
    db.execute("DELETE FROM items WHERE id IN (?, ?)", [ids[0], ids[-1]])  # cascades
    same(now)
    newest = insert_items(db, 1, seed=10, url_prefix="reused", days=2)  # may reuse the rowid
    db.execute("UPDATE item_sources SET source = 'steady-feed' WHERE item_id = ?", newest)
    same(now)
