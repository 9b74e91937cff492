"""Curators' reviews of an item's tags: their verdict overrides the tagger for that item.

A review states the whole answer for one item (relevant or not, its regions and topics), not a
patch: a curator who corrects "why is this under Lampedusa?" also confirms the tags they left.
The latest review of an item applies at every later ingest and `monitor retag` (a taxonomy change
never undoes it), and the reviewed items are a labelled set drawn from the archive itself:
`monitor tags reviewed > reviewed.jsonl && monitor tags eval reviewed.jsonl`.

`apply_review` is pure; `record`, `latest_reviews` and `reviewed_examples` read and write the
`tag_reviews` table (docs/database.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from monitor.errors import MonitorError
from monitor.taxonomy import Taxonomy

MAX_NOTE = 2000
MAX_REVIEWER = 200


class ReviewError(MonitorError):
    """A review that cannot be recorded: an unknown item or slug, or contradicting answers."""


@dataclass(frozen=True)
class Review:
    item_id: int
    relevant: bool
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    reviewer: str
    reviewed_at: str
    note: str | None = None

    def as_dict(self) -> dict:
        return {"relevant": self.relevant, "regions": list(self.regions),
                "topics": list(self.topics), "reviewer": self.reviewer,
                "reviewed_at": self.reviewed_at, "note": self.note}


def checked(taxonomy: Taxonomy, relevant: bool, regions: Iterable[str],
            topics: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The review's slugs, sorted and without repeats; a ReviewError names what is wrong."""
    out = []
    for kind, table, given in (("region", taxonomy.regions, regions),
                               ("topic", taxonomy.topics, topics)):
        slugs = sorted({s.strip() for s in given if s and s.strip()})
        unknown = [s for s in slugs if s not in table]
        if unknown:
            known = ", ".join(table)
            raise ReviewError(f"There is no {kind} {', '.join(map(repr, unknown))} in the "
                              f"taxonomy (the {kind}s are: {known}).")
        out.append(tuple(slugs))
    if not relevant and (out[0] or out[1]):
        raise ReviewError("An item that is not about migration or asylum has no region or topic: "
                          "clear them, or mark the item as relevant.")
    return out[0], out[1]


def apply_review(result, review: Review | None, taxonomy: Taxonomy):
    """The tagger's TagResult with a review's verdict in its place (the same object when there is
    no review). A tag the reviewer kept keeps the tagger's score and evidence; one they added
    scores the tag's threshold; one they removed is listed in `suppressed`. Parents are implied."""
    from monitor.tagging import Tag

    if review is None:
        return result
    mark = {"term": f"reviewed by {review.reviewer}", "field": "review", "weight": 0,
            "reviewer": review.reviewer, "reviewed_at": review.reviewed_at}
    found = {(t.kind, t.slug): t for t in result.tags}
    wanted: dict[tuple[str, str], str | None] = {}
    if review.relevant:
        for kind, slugs in (("region", review.regions), ("topic", review.topics)):
            table = taxonomy.regions if kind == "region" else taxonomy.topics
            for slug in slugs:
                if slug not in table:  # a slug since removed from the taxonomy
                    continue
                wanted[(kind, slug)] = None
                for parent in taxonomy.ancestors(kind, slug):
                    wanted.setdefault((kind, parent), slug)
    tags = []
    for (kind, slug), implied_by in wanted.items():
        tag = found.get((kind, slug))
        if tag is not None:
            tags.append(Tag(kind, slug, tag.score, [*tag.evidence, mark]))
            continue
        table = taxonomy.regions if kind == "region" else taxonomy.topics
        evidence = ([{"term": f"within {slug}", "field": "implied", "weight": 0,
                      "implied_by": implied_by}, mark] if implied_by else [mark])
        tags.append(Tag(kind, slug, table[slug].threshold, evidence))
    suppressed = list(result.suppressed)
    suppressed += [{"kind": t.kind, "tag": t.slug, "score": t.score,
                    "reason": f"removed by {review.reviewer}'s review of {review.reviewed_at[:10]}"}
                   for key, t in found.items() if key not in wanted]
    result = type(result)(relevant=review.relevant, relevance_score=result.relevance_score,
                          relevance_evidence=result.relevance_evidence,
                          tags=sorted(tags, key=lambda t: (t.kind, -t.score, t.slug)),
                          suppressed=suppressed)
    return result


_LATEST_SQL = """SELECT item_id, relevant, regions, topics, reviewer, reviewed_at, note
                 FROM tag_reviews WHERE id IN (
                     SELECT max(id) FROM tag_reviews WHERE item_id IN ({marks}) GROUP BY item_id)"""


def latest_reviews(db, item_ids: list[int]) -> dict[int, Review]:
    """item id -> its latest review, for the items that have one. `db` may be a plain sqlite3
    connection (the retag workers' read-only one)."""
    out: dict[int, Review] = {}
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        for row in db.execute(_LATEST_SQL.format(marks=",".join("?" * len(chunk))), chunk):
            out[row[0]] = _review(row)
    return out


def _review(row) -> Review:
    item_id, relevant, regions, topics, reviewer, reviewed_at, note = row
    return Review(item_id, bool(relevant), tuple(json.loads(regions)), tuple(json.loads(topics)),
                  reviewer, reviewed_at, note)


def history(db, item_id: int) -> list[Review]:
    """Every review of an item, the latest first."""
    return [_review(row) for row in db.execute(
        "SELECT item_id, relevant, regions, topics, reviewer, reviewed_at, note FROM tag_reviews "
        "WHERE item_id = ? ORDER BY id DESC", [item_id])]


def record(db, config, item_id: int, *, relevant: bool, regions: Iterable[str],
           topics: Iterable[str], reviewer: str, note: str | None = None) -> Review:
    """Store a review and re-tag its item at once (its story cluster waits for the next
    `monitor retag`). One transaction: the review and the item's new tags land together."""
    from monitor.store import now_iso, transaction
    from monitor.tagging import retag_items

    regions, topics = checked(config.taxonomy, relevant, regions, topics)
    reviewer = " ".join(str(reviewer or "").split())[:MAX_REVIEWER]
    if not reviewer:
        raise ReviewError("Say who reviewed the item (a name or account).")
    note = (note or "").strip()[:MAX_NOTE] or None
    if db.execute("SELECT 1 FROM items WHERE id = ?", [item_id]).fetchone() is None:
        raise ReviewError(f"There is no item {item_id} in the archive.")
    review = Review(item_id, relevant, regions, topics, reviewer, now_iso(), note)
    with transaction(db):
        db.execute("INSERT INTO tag_reviews (item_id, relevant, regions, topics, reviewer, "
                   "reviewed_at, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [item_id, int(relevant), json.dumps(list(regions)), json.dumps(list(topics)),
                    reviewer, review.reviewed_at, note])
        retag_items(db, config, [item_id])
    return review


def reviewed_examples(db, config) -> Iterator[dict]:
    """Every reviewed item as a labelled line for `monitor tags eval`: title, lede (the summary),
    the start of the text, the detected language and the latest review's answer."""
    limit = config.taxonomy.settings.text_chars
    for row in db.execute(
            """SELECT i.id, i.title, i.summary, substr(i.text, 1, ?), i.language, i.url,
                      r.relevant, r.regions, r.topics, r.reviewer, r.reviewed_at
               FROM tag_reviews r JOIN items i ON i.id = r.item_id
               WHERE r.id IN (SELECT max(id) FROM tag_reviews GROUP BY item_id)
               ORDER BY r.id""", [limit]):
        (item_id, title, summary, text, language, url, relevant, regions, topics, reviewer,
         reviewed_at) = row
        yield {"title": title or "", "lede": summary or "", "text": text or "",
               "lang": language, "relevant": bool(relevant), "regions": json.loads(regions),
               "topics": json.loads(topics), "url": url, "item_id": item_id,
               "reviewer": reviewer, "reviewed_at": reviewed_at}
