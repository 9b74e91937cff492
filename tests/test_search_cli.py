"""`monitor search` and `monitor sources` on a real archive filled with real article text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor import store
from monitor.config import load_config
from monitor.errors import SearchQueryError
from monitor.urls import canonical_url, url_key
from tests.helpers import DATA, feed_source, run_monitor, write_config

INDEX = json.loads((DATA / "articles" / "index.json").read_text(encoding="utf-8"))
UNDATED = "uk__BBC_2024_08_01.html.gz"  # stored without a date: its fetch time counts


def _source_name(file_name: str) -> str:
    return "news-" + file_name.split("__", 1)[0]  # news-de, news-pl ...


def _items() -> list[dict]:
    now = datetime.now(UTC)
    items = []
    for name, meta in INDEX.items():
        published = None
        if name != UNDATED:
            published = datetime.fromisoformat(meta["publishing_date"]).astimezone(UTC)
            published = published.strftime("%Y-%m-%dT%H:%M:%SZ")
        items.append(
            {
                "url": canonical_url(meta["url"]),
                "url_keys": [url_key(meta["url"])],
                "source": _source_name(name),
                "title": meta["title"],
                "summary": meta["articleBody"].split("\n\n")[0][:500],
                "text": meta["articleBody"],
                "published": published,
                "full_text": True,
                "fetched_at": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return items


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A config with one source per country and an archive holding the real articles."""
    folder = tmp_path_factory.mktemp("search")
    names = sorted({_source_name(n) for n in INDEX})
    path = write_config(
        folder, sources=[feed_source(n, f"https://{n}.example.org/feed.xml") for n in names]
    )
    config = load_config(path)
    db = store.open_db(config.storage.database)
    store.sync_sources(db, config.sources)
    results = store.save_items(db, _items())
    assert all(is_new for _, is_new in results)
    store.record_source_result(db, "news-pl", None, 1, 0)
    store.log_fetch_error(
        db,
        "news-fr",
        "https://news-fr.example.org/feed.xml",
        "The server answered HTTP 503 (Service Unavailable).",
    )
    store.record_source_result(
        db, "news-fr", "The server answered HTTP 503 (Service Unavailable).", 0, 0
    )
    db.close()
    return path, config


def _titles(config, query, **kw) -> set[str]:
    db = store.open_db(config.storage.database)
    try:
        return {row["title"] for row in store.search_items(db, query, **kw)}
    finally:
        db.close()


def _title_of(prefix: str) -> str:
    return next(m["title"] for n, m in INDEX.items() if n.startswith(prefix))


BR_ABUSE, BR_GAZA = _title_of("de__BR_2024_04"), _title_of("de__BR_2024_08")
ELDIARIO, CORRIERE = _title_of("es__"), _title_of("it__")
NIEUWSBLAD, RZECZPOSPOLITA = _title_of("be__"), _title_of("pl__")


def test_words_match_title_and_text(archive):
    _, config = archive
    assert _titles(config, "Verlinden") == {NIEUWSBLAD}
    assert _titles(config, "Israel") == {ELDIARIO, BR_GAZA}
    assert _titles(config, "israel gaza") == {ELDIARIO, BR_GAZA}  # implicit AND, any case


def test_phrase(archive):
    _, config = archive
    assert _titles(config, '"Krieg in Israel"') == {BR_GAZA}
    assert _titles(config, '"Israel in Krieg"') == set()


def test_prefix(archive):
    _, config = archive
    assert _titles(config, "Netanyah*") == {ELDIARIO}
    assert _titles(config, "granic*") == {RZECZPOSPOLITA}


def test_diacritics_are_folded(archive):
    _, config = archive
    assert _titles(config, "zamkniecie") == {RZECZPOSPOLITA}  # zamknięcie


def test_or_and_not(archive):
    _, config = archive
    assert _titles(config, "Meloni OR Verlinden") == {CORRIERE, NIEUWSBLAD}
    assert _titles(config, "Israel NOT Albares") == {BR_GAZA}
    assert _titles(config, "Israel -Albares") == {BR_GAZA}
    assert _titles(config, "(Meloni OR Albares) AND Trump") == {CORRIERE, ELDIARIO}


@pytest.mark.parametrize("query", ["(Meloni OR Albares) Trump", "Trump (Meloni OR Albares)"])
def test_bracket_group_next_to_a_word(archive, query):
    _, config = archive
    assert _titles(config, query) == {CORRIERE, ELDIARIO}


def test_source_and_since_filters(archive):
    _, config = archive
    assert _titles(config, "Israel", sources=["news-de"]) == {BR_GAZA}
    assert _titles(config, "Trump", since="2025-03-01T00:00:00Z") == {ELDIARIO}


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ('"Lampedusa arrivals', "unclosed quotation mark"),
        ("OR", "needs a word on both sides"),
        ("Lampedusa OR", "ends with an operator"),
        ("(Lampedusa OR Ceuta", "opening bracket that is never closed"),
        ("Lampedusa)", "closing bracket without a matching opening one"),
        ("-Lampedusa", "must follow another word"),
        ("   ", "The search is empty"),
        ('""', "empty phrase"),
        ("()", "bracket"),
    ],
)
def test_malformed_queries_are_a_sentence(archive, query, sentence):
    _, config = archive
    with pytest.raises(SearchQueryError, match=sentence):
        _titles(config, query)


def test_punctuation_cannot_break_the_query(archive):
    _, config = archive
    for query in (
        "Meloni:",
        "Meloni^",
        "NEAR",
        "Mar-a-Lago",
        "'Meloni'",
        "col:Meloni",
        "a*b",
        "+Meloni",
    ):
        _titles(config, query)  # no exception


# -- the command line -----------------------------------------------------------------------------


def test_cli_search_prints_matches_with_snippets(archive):
    path, _ = archive
    result = run_monitor(path, "search", "Netanyahu")
    assert result.returncode == 0, result.stderr
    assert "news-es: " + ELDIARIO in result.stdout
    assert "https://www.eldiario.es/internacional/" in result.stdout
    assert "[Netanyahu]" in result.stdout  # the matched word is marked in the snippet


def test_cli_search_json_source_and_since(archive):
    path, _ = archive
    result = run_monitor(
        path,
        "search",
        "Israel OR Trump",
        "--json",
        "--since",
        "2025-01-01",
        "--source",
        "news-es",
        "--source",
        "news-it",
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["title"] for r in rows} == {ELDIARIO, CORRIERE}
    assert {"id", "url", "source", "title", "published", "snippet"} <= set(rows[0])
    # --since as a duration: only the undated item, fetched yesterday, is that recent.
    result = run_monitor(path, "search", "Budget OR Israel", "--json", "--since", "7d")
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == ["news-uk"]
    result = run_monitor(path, "search", "Israel", "--since", "2026-11-01")
    assert result.returncode == 0 and result.stdout.strip() == "No items match."


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ('"unclosed quote', "unclosed quotation mark"),
        ("OR", "needs a word on both sides"),
        ("(Lampedusa OR Ceuta", "never closed"),
    ],
)
def test_cli_malformed_query_exit_code_1_without_traceback(archive, query, sentence):
    path, _ = archive
    result = run_monitor(path, "search", query)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and sentence in result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1


def test_cli_bad_since_is_a_usage_error(archive):
    path, _ = archive
    result = run_monitor(path, "search", "Israel", "--since", "last tuesday")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a date (2026-11-01) or a duration (7d)" in result.stderr


def test_cli_sources_shows_health(archive):
    path, _ = archive
    result = run_monitor(path, "sources")
    assert result.returncode == 0, result.stderr
    lines = {
        line.split()[0]: line for line in result.stdout.splitlines() if not line.startswith(" ")
    }
    assert set(lines) == {
        "news-be",
        "news-de",
        "news-es",
        "news-fr",
        "news-it",
        "news-pl",
        "news-uk",
    }
    assert "ok" in lines["news-pl"] and "7d:    1" in lines["news-pl"]
    assert "1 failure(s)" in lines["news-fr"]
    assert "never crawled" in lines["news-de"]
    assert "HTTP 503 (Service Unavailable)" in result.stdout
    rows = {r["name"]: r for r in json.loads(run_monitor(path, "sources", "--json").stdout)}
    assert rows["news-fr"]["consecutive_failures"] == 1
    assert rows["news-de"]["total_items"] == 0  # counts are refreshed when a source is crawled
    assert rows["news-pl"]["total_items"] == 1


def test_cli_sources_lists_a_new_source_before_its_first_crawl(tmp_path):
    path = write_config(tmp_path, sources=[feed_source("brand-new", "https://example.org/f.xml")])
    result = run_monitor(path, "sources")
    assert result.returncode == 0
    assert result.stdout.split()[0] == "brand-new" and "never crawled" in result.stdout
