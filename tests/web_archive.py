"""Archive rows for web tests and the web benchmark, built from real published text in the corpus.

Titles and bodies come from tests/data/corpus, copied from ../shared/corpus (fundus and Zyte AEB
articles, ReliefWeb/EMM feed items); dates, sources and tags are assigned in rotation so facets and charts have something to count.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from tests.helpers import CORPUS

REGIONS = (
    "central-med",
    "lampedusa",
    "belarus-border",
    "eastern-border",
    "balkan-route",
    "channel",
    "eastern-med",
    "netherlands",
    "belgium",
    "eu",
)
TOPICS = (
    "pushbacks",
    "deaths-missing",
    "search-rescue",
    "detention",
    "reception",
    "asylum-policy",
    "returns",
    "children",
)
SOURCES = (
    "infomigrants-en",
    "guardian-migration",
    "ecre-news",
    "le-monde-immigration",
    "tagesschau",
    "nos-binnenland",
    "ansa-cronaca",
    "balkan-insight",
)
_LANG_BY_COUNTRY = {
    "at": "de",
    "de": "de",
    "ch": "de",
    "lu": "fr",
    "fr": "fr",
    "be": "fr",
    "es": "es",
    "it": "it",
    "pl": "pl",
    "uk": "en",
    "us": "en",
}


@lru_cache(maxsize=1)
def corpus_documents() -> tuple[dict, ...]:
    """Real articles: {"title", "text", "url", "language"} (several hundred, several languages)."""
    docs = []
    fundus = json.loads(
        (CORPUS / "articles" / "fundus" / "ground-truth-flat.json").read_text("utf-8")
    )
    for key, value in fundus.items():
        country = key.split("/", 1)[0]
        if value.get("title") and value.get("articleBody"):
            docs.append(
                {
                    "title": value["title"],
                    "text": value["articleBody"],
                    "url": value["url"],
                    "language": _LANG_BY_COUNTRY.get(country, "en"),
                }
            )
    aeb = json.loads(
        (CORPUS / "articles" / "scrapinghub-aeb" / "ground-truth.json").read_text("utf-8")
    )
    for value in aeb.values():
        body = (value.get("articleBody") or "").strip()
        if len(body) > 200:
            first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0][:140]
            docs.append({"title": first, "text": body, "url": value["url"], "language": "en"})
    labelled = CORPUS / "labelled" / "item-labels-from-corpus.jsonl"
    for line in labelled.read_text("utf-8").splitlines():
        row = json.loads(line)
        if row.get("title") and row.get("link"):
            text = row.get("lede") or row.get("summary") or row["title"]
            docs.append(
                {
                    "title": row["title"],
                    "text": text,
                    "url": row["link"],
                    "language": row.get("lang") or "en",
                }
            )
    return tuple(docs)


def insert_items(
    db,
    count: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    days: int = 84,
    url_prefix: str = "",
    fetched: datetime | None = None,
) -> list[int]:
    """Insert `count` items (real text, rotating sources, dates, tags, clusters); returns ids."""
    rng = random.Random(seed)
    docs = corpus_documents()
    start = start or datetime.now(UTC) - timedelta(days=days)
    ids = []
    used: set[str] = set()
    db.execute("BEGIN IMMEDIATE")
    try:
        for i in range(count):
            doc = docs[i % len(docs)]
            when = start + timedelta(seconds=rng.randrange(days * 86400))
            stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            source = SOURCES[i % len(SOURCES)]
            text = doc["text"]
            summary = " ".join(text.split()[:40])
            url = doc["url"]
            if url in used or url_prefix:
                url = f"https://{url_prefix or 'copy'}{i}.example.org/{i}"
            used.add(url)
            cursor = db.execute(
                """INSERT INTO items (url, source, title, summary, text, language, published,
                                      fetched_at, full_text, relevant)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)""",
                [
                    url,
                    source,
                    doc["title"],
                    summary,
                    text[:4000],
                    doc["language"],
                    stamp,
                    fetched.strftime("%Y-%m-%dT%H:%M:%SZ") if fetched else stamp,
                    int(i % 4 != 3),
                ],
            )
            item_id = cursor.lastrowid
            ids.append(item_id)
            db.execute(
                "INSERT INTO item_sources (item_id, source, first_seen) VALUES (?, ?, ?)",
                [item_id, source, stamp],
            )
            if i % 4 != 3:
                region = REGIONS[i % len(REGIONS)]
                topic = TOPICS[(i // 3) % len(TOPICS)]
                word = doc["title"].split()[0] if doc["title"].split() else "?"
                for kind, tag in (("region", region), ("topic", topic)):
                    evidence = [
                        {
                            "term": word.lower(),
                            "field": "title",
                            "weight": 1.5,
                            "lang": doc["language"],
                        }
                    ]
                    db.execute(
                        "INSERT INTO item_tags (item_id, kind, tag, score, evidence) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [item_id, kind, tag, 1.5 + (i % 5) / 10, json.dumps(evidence)],
                    )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    # Every tenth item starts a story with the next two.
    for k in range(0, len(ids) - 2, 10):
        db.execute(
            "UPDATE items SET cluster_id = ? WHERE id IN (?, ?, ?)",
            [ids[k], ids[k], ids[k + 1], ids[k + 2]],
        )
    return ids
