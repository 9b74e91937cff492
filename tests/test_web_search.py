"""The analysts' pages over HTTP: search syntax, filters, facets, snippets, exports, chart, items."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor import archive_queries as aq
from monitor.store import save_items
from monitor.tagging import process_items
from tests.web_archive import corpus_documents, insert_items


@pytest.fixture
def analyst(web):
    insert_items(web.db, 400)
    web.add_user("ana", "analyst")
    return web.login("ana")


def _word_in_corpus() -> str:
    return "Hamburg"


def test_search_needs_an_account(web):
    response = web.client().get("/search?q=Hamburg")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_search_finds_words_and_highlights_them(analyst):
    page = analyst.get("/search", params={"q": _word_in_corpus()})
    assert page.status_code == 200
    assert "<mark>Hamburg</mark>" in page.text
    assert "result" in page.text


def test_phrase_prefix_or_not(web, analyst):
    db = web.db

    def total(q):
        return aq.search(db, aq.SearchParams(q=q)).total

    assert total('"Kalifat-Rufen in Hamburg"') >= 1
    assert total("Islamist*") >= total("Islamisten")
    both = total("Hamburg OR Österreich")
    assert both >= max(total("Hamburg"), total("Österreich"))
    assert total("Hamburg NOT Österreich") == total("Hamburg") - total("Hamburg Österreich")
    assert total("Hamburg -Österreich") == total("Hamburg NOT Österreich")


def test_malformed_query_gets_a_message_not_an_error_page(analyst):
    page = analyst.get("/search", params={"q": '"unclosed phrase'})
    assert page.status_code == 400
    assert "unclosed quotation mark" in page.text
    page = analyst.get("/search", params={"q": "Hamburg OR"})
    assert "operator" in page.text
    page = analyst.get("/search", params={"q": "Hamburg", "since": "yesterday"})
    assert "is not a date" in page.text


def test_filters_and_facet_counts_agree(web, analyst):
    page = analyst.get("/search.json", params={"q": "the", "region": "lampedusa"})
    rows = page.json()["items"]
    assert rows and all("lampedusa" in r["regions"] for r in rows)
    result = aq.search(web.db, aq.SearchParams(q="the"))
    counts = dict(result.facets["region"])
    filtered = aq.search(web.db, aq.SearchParams(q="the", regions=("lampedusa",)))
    assert filtered.total == counts["lampedusa"]
    languages = aq.search(web.db, aq.SearchParams(q="the", languages=("de",)))
    assert all(item["language"] == "de" for item in languages.items)


def test_date_range_and_sort_by_date(web, analyst):
    since = (datetime.now(UTC) - timedelta(days=14)).date().isoformat()
    data = analyst.get("/search.json", params={"q": "the", "since": since, "sort": "date"}).json()
    dates = [r["published"] for r in data["items"]]
    assert dates and all(d[:10] >= since for d in dates)
    assert dates == sorted(dates, reverse=True)


def test_scraped_markup_is_escaped_in_titles_and_snippets(web, analyst):
    web.db.execute(
        """INSERT INTO items (url, source, title, summary, text, language, published, fetched_at)
           VALUES ('https://example.org/x', 'ecre-news', '<script>alert(1)</script> Lampedusa',
                   '<img src=x onerror=alert(2)> Lampedusa arrivals', 'Lampedusa <b>bold</b>',
                   'en', '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')"""
    )
    page = analyst.get("/search", params={"q": "Lampedusa"})
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert "<img src=x" not in page.text


def test_only_http_links_are_rendered(web, analyst):
    web.db.execute(
        """INSERT INTO items (url, source, title, summary, text, language, published, fetched_at)
           VALUES ('javascript:alert(1)', 'ecre-news', 'Ceuta fence', '', 'Ceuta fence text', 'en',
                   '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')"""
    )
    page = analyst.get("/search", params={"q": "Ceuta"})
    assert "javascript:alert" not in page.text


def test_csv_and_json_export(analyst):
    response = analyst.get("/search.csv", params={"q": "Hamburg"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and all("Hamburg" in (r["title"] + r["snippet"]) or r["snippet"] for r in rows)
    assert set(aq.EXPORT_COLUMNS) == set(rows[0])
    data = json.loads(analyst.get("/search.json", params={"q": "Hamburg"}).text)
    assert data["count"] == len(rows)


def test_csv_export_defuses_formulas(web, analyst):
    web.db.execute(
        """INSERT INTO items (url, source, title, summary, text, language, published, fetched_at)
           VALUES ('https://example.org/f', 'ecre-news', '=HYPERLINK("http://evil")', '',
                   'Evros river crossing', 'en', '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z')"""
    )
    text = analyst.get("/search.csv", params={"q": "Evros"}).text
    assert "'=HYPERLINK" in text


def test_pagination(analyst):
    first = analyst.get("/api/search", params={"q": "the", "per_page": 5}).json()["items"]
    second = analyst.get("/api/search", params={"q": "the", "per_page": 5, "page": 2}).json()[
        "items"
    ]
    assert len(first) == 5 and len(second) == 5
    assert not {r["id"] for r in first} & {r["id"] for r in second}


def test_weekly_chart_renders_without_javascript(analyst):
    since = (datetime.now(UTC) - timedelta(weeks=10)).date().isoformat()
    page = analyst.get("/chart", params={"by": "topic", "since": since})
    assert page.status_code == 200
    assert "<svg" in page.text and "<polyline" in page.text
    assert "Pushbacks" in page.text or "pushbacks" in page.text
    assert "<table>" in page.text  # the same numbers for screen readers


def test_weekly_counts_add_up(web, analyst):
    since = (datetime.now(UTC) - timedelta(days=120)).date().isoformat()
    until = datetime.now(UTC).date().isoformat()
    data = aq.weekly_counts(web.db, "region", since, until, top=20)
    tagged = web.db.execute("SELECT count(*) FROM item_tags WHERE kind = 'region'").fetchone()[0]
    assert sum(s["total"] for s in data["series"]) == tagged
    assert all(w[:4].isdigit() for w in data["weeks"])


def test_item_page_shows_tags_evidence_and_story(web, analyst):
    first = web.db.execute("SELECT id FROM items WHERE cluster_id = id LIMIT 1").fetchone()[0]
    page = analyst.get(f"/items/{first}")
    assert page.status_code == 200
    assert "Tags and why" in page.text and "in title" in page.text
    others = web.db.execute(
        "SELECT title FROM items WHERE cluster_id = ? AND id != ?", [first, first]
    ).fetchall()
    from markupsafe import escape

    assert str(escape(others[0][0])) in page.text
    assert analyst.get("/items/999999").status_code == 404


def test_corpus_is_real_text():
    docs = corpus_documents()
    assert len(docs) > 300 and len({d["language"] for d in docs}) >= 5


def test_common_words_are_ranked_among_the_newest_matches_with_a_notice(web, analyst, monkeypatch):
    full = aq.search(web.db, aq.SearchParams(q="the"))
    monkeypatch.setattr(aq, "CANDIDATE_WINDOW", 50)
    bounded = aq.search(web.db, aq.SearchParams(q="the"))
    assert bounded.candidates_bounded and not full.candidates_bounded
    assert bounded.total == full.total  # the count still covers every match
    newest = {
        r[0]
        for r in web.db.execute(
            "SELECT rowid FROM items_fts WHERE items_fts MATCH '\"the\"' ORDER BY rowid DESC LIMIT 50"
        )
    }
    assert {item["id"] for item in bounded.items} <= newest
    monkeypatch.setattr(aq, "RANK_WINDOW", 50)  # the web pages use the in-memory index path
    page = analyst.get("/search", params={"q": "the"})
    assert "most recently stored matches" in page.text


def test_in_memory_index_gives_the_same_answers_as_sql(web, analyst):
    from monitor.archive_index import FacetIndex

    index = FacetIndex(web.db)
    for query in (
        {"q": "the", "region": ["lampedusa", "channel"]},
        {"q": "Hamburg OR Österreich", "language": ["de"], "sort": "date"},
        {"topic": ["pushbacks"], "since": "2026-10-01"},
        {"q": "the", "relevant": "1", "source": ["ecre-news"], "sort": "date"},
    ):
        params = aq.SearchParams.from_mapping(query)
        sql, fast = aq.search(web.db, params), aq.search(web.db, params, index=index)
        assert fast.total == sql.total, query
        assert dict(fast.facets["region"]) == dict(sql.facets["region"]), query
        assert dict(fast.facets["source"]) == dict(sql.facets["source"]), query
        if params.sort == "date":
            assert [i["id"] for i in fast.items] == [i["id"] for i in sql.items], query
        elif fast.fts:
            assert {i["id"] for i in fast.items} <= {
                r[0]
                for r in web.db.execute(
                    "SELECT rowid FROM items_fts WHERE items_fts MATCH ?", [fast.fts]
                )
            }


def test_in_memory_weekly_counts_match_sql(web, analyst):
    from monitor.archive_index import FacetIndex

    index = FacetIndex(web.db)
    since = (datetime.now(UTC) - timedelta(days=120)).date().isoformat()
    until = datetime.now(UTC).date().isoformat()
    for kind, params in (("region", None), ("topic", aq.SearchParams(q="the", languages=("en",)))):
        assert aq.weekly_counts(web.db, kind, since, until, params, top=20) == aq.weekly_counts(
            web.db, kind, since, until, params, top=20, index=index
        )


def test_prefix_search_highlights_the_completed_words(analyst):
    page = analyst.get("/search", params={"q": "Islamist*"})
    assert "<mark>Islamisten</mark>" in page.text or "<mark>Islamist" in page.text


def _store_and_tag(web, word: str, source: str) -> int:
    """One item through the ingest path (save_items, then tagging), fetched an hour ago."""
    fetched = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    item = {
        "url": f"https://{word.lower()}.example.org/rescue",
        "url_keys": [f"{word.lower()}.example.org/rescue"],
        "source": source,
        "title": f"{word}: 40 people rescued off Lampedusa after their boat capsized",
        "summary": f"The coast guard brought 40 asylum seekers to Lampedusa after the {word} call.",
        "text": "Search and rescue ships of NGOs brought the survivors of the shipwreck in the "
        "Mediterranean to the island of Lampedusa.",
        "language": "en",
        "published": fetched,
        "fetched_at": fetched,
        "full_text": True,
    }
    [(item_id, _)] = save_items(web.db, [item])
    process_items(web.db, web.config, [item_id])
    return item_id


def test_a_stored_item_is_counted_at_once_in_search_chart_and_source_health(web, analyst):
    """The web desk keeps answers between requests: a new item must still show on the next one."""
    web.db.execute(
        "INSERT INTO sources (name, url, kind, every_seconds) "
        "VALUES ('ecre-news', 'https://ecre.example.org/feed', 'feed', 3600)"
    )
    web.add_user("root", "admin")
    admin = web.login("root")

    def look() -> dict:
        seen = {}
        for _ in range(2):  # the second answer of each comes from what the server kept
            wide = analyst.get("/api/search", params={"q": "Lampedusa"}).json()
            seen["total"] = wide["total"]
            seen["facets"] = {
                kind: {f["value"]: f["count"] for f in wide["facets"][kind]}
                for kind in ("region", "topic", "source")
            }
            seen["new"] = analyst.get("/api/search", params={"q": "Quokkaboot"}).json()
            seen["page"] = analyst.get("/search", params={"q": "Quokkaboot"}).text
            seen["chart"] = analyst.get("/chart", params={"by": "region", "q": "Quokkaboot"}).text
            sources = admin.get("/api/sources").json()["sources"]
            seen["week"] = {s["name"]: s["weekly"][-1] for s in sources}["ecre-news"]
            seen["health"] = admin.get("/admin/sources").text
        return seen

    before = look()
    assert before["new"]["total"] == 0 and "Nothing matched" in before["page"]
    assert "No tagged items in this period" in before["chart"]
    item_id = _store_and_tag(web, "Quokkaboot", "ecre-news")
    tags = set(web.db.execute("SELECT kind, tag FROM item_tags WHERE item_id = ?", [item_id]))
    assert ("region", "lampedusa") in tags
    after = look()
    assert after["new"]["total"] == 1 and after["new"]["items"][0]["id"] == item_id
    assert f'href="/items/{item_id}"' in after["page"]
    assert after["total"] == before["total"] + 1
    for kind, tag in tags | {("source", "ecre-news")}:
        assert after["facets"][kind][tag] == before["facets"][kind].get(tag, 0) + 1, tag
    assert "Lampedusa (1)" in after["chart"] and "No tagged items" not in after["chart"]
    assert after["week"] == before["week"] + 1
    assert after["health"] != before["health"]
