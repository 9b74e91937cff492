"""Digest fixtures: a real archive file holding a week of stored stories built from real published
text (the fundus test pages, tests/data/corpus), with tags and clusters inserted as tagging would.

The tags are assigned by position, not by reading the text: they are test data that put stories in
every configured section, not a claim about what the articles are about.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from monitor.config import load_config
from monitor.store import open_db, save_items
from monitor.urls import canonical_url, url_key
from tests.helpers import CORPUS, write_config

WEEK = "2026-W49"
# W49 is sent on Friday 4 Dec 2026 10:00 Brussels (09:00 UTC); its window opens a week earlier.
WINDOW_START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # Wednesday of W49, before the send time

FUNDUS = CORPUS / "articles" / "fundus" / "ground-truth-flat.json"
_LANG = {"at": "de", "ch": "de", "de": "de", "lu": "de", "be": "nl", "fr": "fr", "it": "it",
         "pl": "pl", "es": "es", "uk": "en", "us": "en"}
HEAVY = {"politicoeu": 2.0, "theguardian": 2.0, "reuters": 1.5}
# (region, topic) per section of the bundled config.toml, in its order.
SECTION_TAGS = [
    ("central-med", "search-rescue"), ("balkan-route", "pushbacks"), ("belarus-border", "pushbacks"),
    ("canary-islands", "arrivals"), ("channel", "deaths-missing"), (None, "externalisation"),
    ("eu", "asylum-policy"), ("netherlands", "reception"),
]
PARENTS = {"belarus-border": "eastern-border", "canary-islands": "western-med", "lampedusa": "central-med"}


@cache
def corpus_articles() -> tuple[dict, ...]:
    """The fundus pages with a title and a body: url, publisher, language, title, body."""
    data = json.loads(FUNDUS.read_text(encoding="utf-8"))
    out = []
    urls = set()
    for key in sorted(data):
        row = data[key]
        if not row.get("title") or len(row.get("articleBody") or "") < 300:
            continue
        if canonical_url(row["url"]) in urls:  # two test pages of one article
            continue
        urls.add(canonical_url(row["url"]))
        country, file = key.split("/", 1)
        publisher = re.sub(r"_\d{4}_\d{2}_\d{2}\.html\.gz$", "", file).lower()
        out.append({"url": canonical_url(row["url"]), "publisher": publisher,
                    "language": _LANG.get(country, "en"), "title": row["title"],
                    "body": row["articleBody"]})
    return tuple(out)


def corpus_sources() -> list[dict]:
    seen: dict[str, dict] = {}
    for article in corpus_articles():
        name = article["publisher"]
        if name not in seen:
            host = re.match(r"https?://([^/]+)", article["url"]).group(1)
            seen[name] = {"name": name, "url": f"https://{host}/feed", "kind": "feed",
                          "language": article["language"], "weight": HEAVY.get(name, 1.0)}
    return list(seen.values())


def write_digest_config(tmp_path, sections: list[dict] | None = None, smtp: dict | None = None,
                        **digest) -> object:
    """A config with the corpus publishers as sources; `digest` keys and `smtp` override the bundled."""
    extra = {}
    if smtp:
        extra["smtp"] = smtp
    if sections is not None or digest:
        from tests.helpers import base_config

        table = dict(base_config()["digest"])
        table.update(digest)
        if sections is not None:
            table["sections"] = sections
        extra["digest"] = table
    return load_config(write_config(tmp_path, sources=corpus_sources(), **extra))


def fill_week(db, config, stories: int = 70, clustered_every: int = 4, start: datetime = WINDOW_START,
              tags: list[tuple[str | None, str]] | None = None) -> list[dict]:
    """Store `stories` relevant stories in the week from real articles: every `clustered_every`-th
    story is reported by two or three outlets (one cluster). Also stores a non-relevant item and one
    from the week before. Returns one dict per story: story, items, region, topic."""
    tags = tags or SECTION_TAGS
    articles = list(corpus_articles())
    span = (NOW - start).total_seconds()
    made = []
    cursor = 0
    for number in range(stories):
        size = 1 + (number % 2 + 1 if clustered_every and number % clustered_every == 0 else 0)
        members = []
        used = set()
        while len(members) < size:
            article = articles[cursor % len(articles)]
            cursor += 1
            if article["publisher"] in used and len(used) < len(articles):
                continue
            used.add(article["publisher"])
            members.append(article)
        region, topic = tags[number % len(tags)]
        published = start + timedelta(seconds=span * (number + 0.5) / stories)
        ids = []
        for i, article in enumerate(members):
            ids.append(_store(db, article, article["url"], published + timedelta(minutes=37 * i)))
        story = ids[0]
        _tag(db, ids, story, region, topic)
        made.append({"story": story, "items": ids, "region": region, "topic": topic,
                     "title": members[0]["title"], "published": published})
    # A distractor (not relevant) and last week's news: neither belongs in the issue.
    extra = articles[cursor % len(articles)]
    other = _store(db, extra, extra["url"] + "?distractor=1", NOW - timedelta(hours=3))
    db.execute("UPDATE items SET relevant = 0 WHERE id = ?", [other])
    old = _store(db, extra, extra["url"] + "?lastweek=1", start - timedelta(days=2))
    _tag(db, [old], old, "central-med", "search-rescue")
    return made


def _store(db, article: dict, url: str, published: datetime) -> int:
    copy = 0
    base = url
    while db.execute("SELECT 1 FROM items WHERE url = ?", [canonical_url(url)]).fetchone():
        copy += 1  # the corpus is reused: every stored story must be a new item
        url = f"{base}{'&' if '?' in base else '?'}copy={copy}"
    paragraphs = [p for p in article["body"].split("\n\n") if p.strip()]
    item = {"url": canonical_url(url), "url_keys": [url_key(url)], "source": article["publisher"],
            "title": article["title"], "summary": paragraphs[0][:500], "text": article["body"],
            "language": article["language"], "published": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fetched_at": published.strftime("%Y-%m-%dT%H:%M:%SZ"), "full_text": True}
    [(item_id, _)] = save_items(db, [item])
    return item_id


def _tag(db, ids: list[int], story: int, region: str | None, topic: str) -> None:
    for item_id in ids:
        db.execute("UPDATE items SET relevant = 1, cluster_id = ? WHERE id = ?", [story, item_id])
        title = db.execute("SELECT title FROM items WHERE id = ?", [item_id]).fetchone()[0]
        word = (title.split() or ["?"])[0]
        evidence = json.dumps({"terms": [word], "where": "title"}, ensure_ascii=False)
        rows = [("topic", topic)]
        if region:
            rows.append(("region", region))
            if region in PARENTS:
                rows.append(("region", PARENTS[region]))
        for kind, tag in rows:
            db.execute("INSERT OR REPLACE INTO item_tags VALUES (?, ?, ?, ?, ?)",
                       [item_id, kind, tag, 2.5, evidence])


def add_hostile_story(db, published: datetime = NOW - timedelta(hours=1)) -> int:
    """A story whose scraped fields try HTML injection and a javascript: link (as a broken or
    malicious feed could deliver), reported by a second outlet with a javascript: URL."""
    stamp = published.strftime("%Y-%m-%dT%H:%M:%SZ")
    main = db.execute(
        """INSERT INTO items (url, source, title, summary, text, language, published, fetched_at,
           full_text, relevant) VALUES (?, ?, ?, ?, ?, 'en', ?, ?, 1, 1)""",
        ["javascript:alert(document.cookie)", "theguardian",
         '<script>alert("pwned")</script> Boat capsizes off <b>Lampedusa</b> & "40 missing"',
         "", 'Survivors said the boat left Sfax. <img src=x onerror=alert(1)> Rescuers found "40" missing. '
             "The coastguard confirmed the figures.", stamp, stamp]).lastrowid
    other = db.execute(
        """INSERT INTO items (url, source, title, summary, text, language, published, fetched_at,
           full_text, relevant) VALUES (?, 'reuters', 'Second report', '', 'Text. More text.', 'en',
           ?, ?, 1, 1)""", ["javascript:alert(2)", stamp, stamp]).lastrowid
    third = db.execute(
        """INSERT INTO items (url, source, title, summary, text, language, published, fetched_at,
           full_text, relevant) VALUES (?, 'bbc', 'Third report', '', 'Text. More text.', 'en',
           ?, ?, 1, 1)""", ["https://www.bbc.co.uk/news/a?x=1&y=<2>", stamp, stamp]).lastrowid
    for item_id in (main, other, third):
        db.execute("INSERT OR IGNORE INTO item_sources VALUES (?, (SELECT source FROM items WHERE id = ?), ?)",
                   [item_id, item_id, stamp])
    _tag(db, [main, other, third], main, "lampedusa", "deaths-missing")
    db.execute("INSERT OR REPLACE INTO item_tags VALUES (?, 'region', 'central-med', 3.0, '{}')", [main])
    return main


@pytest.fixture
def digest_config(tmp_path):
    return write_digest_config(tmp_path)


@pytest.fixture
def digest_db(digest_config):
    """An archive with a week (2026-W49) of 70 stored, tagged, clustered stories."""
    db = open_db(digest_config.storage.database)
    db.stories = fill_week(db, digest_config)
    yield db
    db.close()
