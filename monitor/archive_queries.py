"""Analyst queries over the archive: faceted full-text search, exports, weekly counts, source health.

Shared by the web desk, the JSON API and the CLI; read-only SQL on top of monitor.store (which owns
the schema and the FTS query syntax). Facet counts are computed over the best FACET_WINDOW matches
so they stay fast on millions of rows; the total is exact up to COUNT_CAP and shown as "more than"
beyond it.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from monitor.errors import SearchQueryError
from monitor.store import fts_query, get_item

FACET_WINDOW = 2000  # facet counts are over at most this many best-ranked matches
COUNT_CAP = 10000  # totals above this are reported as "more than 10,000"
CANDIDATE_WINDOW = 20000  # results are ordered among the newest this many text matches
MAX_PER_PAGE = 100
EXPORT_LIMIT = 10000
SORTS = ("relevance", "date")
FACET_KINDS = ("region", "topic", "language", "source")
_START, _END = "\x02", "\x03"  # snippet markers that cannot occur in stored text
_WHEN = "coalesce(items.published, items.fetched_at)"


@dataclass(frozen=True)
class SearchParams:
    q: str = ""
    regions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: str | None = None  # YYYY-MM-DD, inclusive
    until: str | None = None  # YYYY-MM-DD, inclusive
    relevant_only: bool = False
    sort: str = "relevance"
    page: int = 1
    per_page: int = 20
    fetched_after: str | None = None  # ISO timestamp; used by saved searches, not by the form

    @classmethod
    def from_mapping(cls, data: Any) -> SearchParams:
        """From a query string (Starlette QueryParams / MultiDict) or a plain dict of lists."""

        def many(name: str) -> tuple[str, ...]:
            if hasattr(data, "getlist"):
                values = data.getlist(name)
            else:
                raw = data.get(name, ())
                values = [raw] if isinstance(raw, str) else list(raw or ())
            out: list[str] = []
            for value in values:
                out.extend(v.strip() for v in str(value).split(",") if v.strip())
            return tuple(dict.fromkeys(out))[:50]

        def one(name: str) -> str:
            value = data.get(name)
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            return str(value).strip() if value is not None else ""

        sort = one("sort") or "relevance"
        if sort not in SORTS:
            raise SearchQueryError(f"Sort by 'relevance' or 'date', not {sort!r}.")
        params = cls(
            q=one("q")[:1000],
            regions=many("region"),
            topics=many("topic"),
            languages=many("language"),
            sources=many("source"),
            since=_day(one("since"), "since"),
            until=_day(one("until"), "until"),
            relevant_only=one("relevant") in ("1", "true", "on", "yes"),
            sort=sort,
            page=_int(one("page"), "page", 1, 1, 10_000),
            per_page=_int(one("per_page"), "per_page", 20, 1, MAX_PER_PAGE),
        )
        if params.since and params.until and params.since > params.until:
            raise SearchQueryError("The start date is after the end date.")
        return params

    def query_string(self, **changes: Any) -> str:
        """URL query for these parameters (with changes), for links such as the pager."""
        from urllib.parse import urlencode

        p = replace(self, **changes)
        pairs: list[tuple[str, str]] = []
        if p.q:
            pairs.append(("q", p.q))
        for name, values in (
            ("region", p.regions),
            ("topic", p.topics),
            ("language", p.languages),
            ("source", p.sources),
        ):
            pairs.extend((name, v) for v in values)
        if p.since:
            pairs.append(("since", p.since))
        if p.until:
            pairs.append(("until", p.until))
        if p.relevant_only:
            pairs.append(("relevant", "1"))
        if p.sort != "relevance":
            pairs.append(("sort", p.sort))
        if p.page != 1:
            pairs.append(("page", str(p.page)))
        if p.per_page != 20:
            pairs.append(("per_page", str(p.per_page)))
        return urlencode(pairs)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _day(text: str, name: str) -> str | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        label = "start" if name == "since" else "end"
        raise SearchQueryError(
            f"The {label} date {text!r} is not a date such as 2026-11-30."
        ) from None


def _int(text: str, name: str, default: int, low: int, high: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SearchQueryError(f"'{name}' must be a whole number, not {text!r}.") from None
    return max(low, min(high, value))


@dataclass
class SearchResult:
    params: SearchParams
    items: list[dict]
    total: int
    total_capped: bool  # True when total means "more than COUNT_CAP"
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    facet_window: int = 0  # how many matches the facet counts cover
    fts: str | None = None  # the FTS5 expression actually run
    candidates_bounded: bool = False  # ranked among the newest CANDIDATE_WINDOW text matches only

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, COUNT_CAP) // self.params.per_page))

    def as_dict(self) -> dict:
        return {
            "params": self.params.as_dict(),
            "total": self.total,
            "total_capped": self.total_capped,
            "facet_window": self.facet_window,
            "candidates_bounded": self.candidates_bounded,
            "facets": {
                k: [{"value": v, "count": n} for v, n in rows] for k, rows in self.facets.items()
            },
            "items": [
                {k: v for k, v in item.items() if k != "snippet_html"} for item in self.items
            ],
        }


def _filters(p: SearchParams) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for kind, tags in (("region", p.regions), ("topic", p.topics)):
        if tags:
            # Correlated EXISTS: one primary-key probe per candidate, instead of materialising
            # every item of a big region when the text query already narrowed things down.
            where.append(
                f"EXISTS (SELECT 1 FROM item_tags WHERE item_tags.item_id = items.id "
                f"AND kind = '{kind}' AND tag IN ({','.join('?' * len(tags))}))"
            )
            params.extend(tags)
    if p.languages:
        where.append(f"items.language IN ({','.join('?' * len(p.languages))})")
        params.extend(p.languages)
    if p.sources:
        where.append(f"items.source IN ({','.join('?' * len(p.sources))})")
        params.extend(p.sources)
    if p.since:
        where.append(f"{_WHEN} >= ?")
        params.append(p.since)
    if p.until:
        where.append(f"{_WHEN} < ?")
        params.append((date.fromisoformat(p.until) + timedelta(days=1)).isoformat())
    if p.relevant_only:
        where.append("items.relevant = 1")
    if p.fetched_after:
        where.append("items.fetched_at > ?")
        params.append(p.fetched_after)
    return where, params


def _candidate_floor(db, match: str) -> int | None:
    """The rowid of the CANDIDATE_WINDOW-th most recently stored match, when there are more.

    Ranking (bm25) or date-sorting every match of a common word costs time proportional to the
    matches; bounding the candidates to the newest CANDIDATE_WINDOW keeps a search on millions of
    items within its budget. FTS5 walks rowids in descending order without scoring, so this is cheap.
    """
    if not CANDIDATE_WINDOW:
        return None
    row = _run(
        db,
        "SELECT rowid FROM items_fts WHERE items_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
        [match, CANDIDATE_WINDOW - 1],
    )
    return row[0][0] if row else None


def _matching_ids(
    db, p: SearchParams, limit: int, match: str | None, floor: int | None = None
) -> list[int]:
    where, params = _filters(p)
    bound = "" if floor is None else f" AND items_fts.rowid >= {int(floor)}"
    if match and not where and p.sort == "relevance":
        # No filter on items: rank inside the FTS table alone, without the join.
        sql = f"SELECT rowid FROM items_fts WHERE items_fts MATCH ?{bound} ORDER BY rank LIMIT ?"
        return [row[0] for row in _run(db, sql, [match, limit])]
    if match:
        order = "items_fts.rank" if p.sort == "relevance" else f"{_WHEN} DESC, items.id DESC"
        sql = (
            f"SELECT items.id FROM items_fts JOIN items ON items.id = items_fts.rowid "
            f"WHERE items_fts MATCH ?{bound} {''.join(' AND ' + w for w in where)} "
            f"ORDER BY {order} LIMIT ?"
        )
        args = [match, *params, limit]
    else:
        sql = (
            f"SELECT items.id FROM items {'WHERE ' + ' AND '.join(where) if where else ''} "
            f"ORDER BY {_WHEN} DESC, items.id DESC LIMIT ?"
        )
        args = [*params, limit]
    return [row[0] for row in _run(db, sql, args)]


def _run(db, sql: str, args: list) -> list:
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc) or "MATCH" in str(exc) or "syntax" in str(exc):
            raise SearchQueryError(f"The search could not be understood ({exc}).") from None
        raise


def _count(db, p: SearchParams, match: str | None) -> tuple[int, bool]:
    where, params = _filters(p)
    if match and not where:
        inner = "SELECT 1 FROM items_fts WHERE items_fts MATCH ?"
        args = [match]
    elif match:
        inner = (
            f"SELECT 1 FROM items_fts JOIN items ON items.id = items_fts.rowid "
            f"WHERE items_fts MATCH ? {''.join(' AND ' + w for w in where)}"
        )
        args = [match, *params]
    else:
        inner = f"SELECT 1 FROM items {'WHERE ' + ' AND '.join(where) if where else ''}"
        args = list(params)
    n = _run(db, f"SELECT count(*) FROM ({inner} LIMIT ?)", [*args, COUNT_CAP + 1])[0][0]
    return (COUNT_CAP, True) if n > COUNT_CAP else (n, False)


def _no_memo(key, compute):
    return compute()


def search(db, p: SearchParams, facets: bool = True, index=None, memo=None) -> SearchResult:
    """One page of results with snippets, the total and facet counts.

    With a monitor.archive_index.FacetIndex, filters and facet counts are computed in memory over
    every match (up to MAX_TEXT_MATCHES text matches); without one, in SQL over the best matches.
    memo(key, compute), when given, may keep what depends only on the text query and the archive
    (the text matches and their bm25 order) for the next search with the same words; the caller
    must drop what it kept when the archive changes (monitor.web.cache does).
    """
    match = fts_query(p.q) if p.q.strip() else None
    if index is not None and p.fetched_after is None:
        return _search_indexed(db, index, p, match, facets, memo or _no_memo)
    window = max(FACET_WINDOW if facets else 0, p.page * p.per_page)
    floor = _candidate_floor(db, match) if match else None
    ids = _matching_ids(db, p, window, match, floor)
    if len(ids) < window and floor is None:
        total, capped = len(ids), False
    else:
        total, capped = _count(db, p, match)
    page_ids = ids[(p.page - 1) * p.per_page : p.page * p.per_page]
    items = _rows(db, page_ids, match)
    result = SearchResult(p, items, total, capped, fts=match, candidates_bounded=floor is not None)
    if facets:
        facet_ids = ids[:FACET_WINDOW]
        result.facets = facet_counts(db, facet_ids)
        result.facet_window = len(facet_ids)
    return result


MAX_TEXT_MATCHES = 20000  # the in-memory path considers the newest this many text matches
RANK_WINDOW = 1000  # bm25 is computed for the newest this many text matches


def _indexed_matches(db, idx, p: SearchParams, match: str | None, memo=_no_memo):
    """(text candidates newest first, those passing the filters, whether the text was capped)."""
    import numpy as np

    if not match:
        # Every item is a candidate: filter the whole columns (no gather of a million ids).
        keep = _keep(idx, p, slice(None), idx.present.copy())
        return idx.ids_desc, np.flatnonzero(keep)[::-1], False
    cand = memo(
        ("text", match, MAX_TEXT_MATCHES),
        lambda: _read_only(_text_matches(db, match, MAX_TEXT_MATCHES)),
    )
    text_capped = len(cand) == MAX_TEXT_MATCHES
    cand = cand[cand <= idx.max_id]
    return cand, cand[_keep(idx, p, cand, idx.present[cand])], text_capped


def _text_matches(db, match: str, limit: int):
    """Rowids of the newest `limit` text matches, newest first, as a numpy array.

    One row of comma-separated ids instead of `limit` rows: building a Python tuple per row
    cost several times what FTS5 spends finding them.
    """
    import numpy as np

    row = _run(
        db,
        "SELECT group_concat(rowid) FROM (SELECT rowid FROM items_fts WHERE items_fts MATCH ? "
        "ORDER BY rowid DESC LIMIT ?)",
        [match, limit],
    )
    text = row[0][0] if row else None
    if not text:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _read_only(array):
    array.flags.writeable = False  # shared between requests through the memo
    return array


def _ranked(db, match: str, floor: int):
    """Rowids of the text matches at or above floor, best bm25 first."""
    import numpy as np

    rows = _run(
        db,
        "SELECT rowid FROM items_fts WHERE items_fts MATCH ? AND rowid >= ? ORDER BY rank",
        [match, floor],
    )
    return _read_only(np.array([r[0] for r in rows], dtype=np.int64))


def _keep(idx, p: SearchParams, at, keep):
    """keep (a boolean array over the items at `at`) narrowed by the filters of p, in place."""
    import numpy as np

    for kind, tags in (("region", p.regions), ("topic", p.topics)):
        if tags:
            keep &= (idx.masks[kind][at] & idx.mask_for(kind, tags)) != 0
    for values, codes, column in (
        (p.languages, idx.language_code, idx.language),
        (p.sources, idx.source_code, idx.source),
    ):
        if values:
            wanted = [codes[v] for v in values if v in codes]
            if len(wanted) == 1:
                keep &= column[at] == wanted[0]
            else:
                keep &= np.isin(column[at], np.array(wanted or [-1], dtype=np.int32))
    if p.since:
        keep &= idx.day[at] >= np.datetime64(p.since, "D").astype(np.int64)
    if p.until:
        keep &= idx.day[at] <= np.datetime64(p.until, "D").astype(np.int64)
    if p.relevant_only:
        keep &= idx.relevant[at] == 1
    return keep


def _search_indexed(
    db, idx, p: SearchParams, match: str | None, facets: bool, memo=_no_memo
) -> SearchResult:
    import numpy as np

    bounded = False
    cand, found, text_capped = _indexed_matches(db, idx, p, match, memo)
    total = int(len(found))
    need = p.page * p.per_page
    if match and p.sort == "relevance":
        floor = int(cand[min(RANK_WINDOW, len(cand)) - 1]) if len(cand) else 0
        ranked = memo(("rank", match, floor), lambda: _ranked(db, match, floor))
        ranked = ranked[_member(ranked, found)]
        bounded = len(cand) > RANK_WINDOW
        order = list(ranked[:need])
        if len(order) < need:  # beyond the ranked window: newest first
            rest = found[~_member(found, np.sort(ranked)[::-1])] if len(ranked) else found
            order += list(_newest(idx, rest, need - len(order)))
    else:
        order = list(_newest(idx, found, need))
    page_ids = [int(i) for i in order[(p.page - 1) * p.per_page : need]]
    result = SearchResult(
        p, _rows(db, page_ids, match), total, text_capped, fts=match, candidates_bounded=bounded
    )
    if facets:
        result.facets = _indexed_facets(idx, found)
        result.facet_window = total
    return result


def _member(values, desc):
    """For each of values, whether it is in `desc` (unique ids in descending order)."""
    import numpy as np

    if not len(desc) or not len(values):
        return np.zeros(len(values), dtype=bool)
    asc = desc[::-1]
    at = np.minimum(np.searchsorted(asc, values), len(asc) - 1)
    return asc[at] == values


def _newest(idx, ids, k: int):
    """The k items of ids with the latest date and time (ties: higher id first), as SQL orders them."""
    import numpy as np

    if k <= 0 or not len(ids):
        return ids[:0]
    key = (idx.when[ids] << 24) | ids  # seconds since 1970 fit in 39 bits, ids in 24
    if len(ids) > k:
        part = np.argpartition(-key, k - 1)[:k]
        ids, key = ids[part], key[part]
    return ids[np.argsort(-key, kind="stable")]


def _indexed_facets(idx, ids) -> dict[str, list[tuple[str, int]]]:
    import numpy as np

    facets: dict[str, list[tuple[str, int]]] = {}
    for kind in ("region", "topic"):
        masks = idx.masks[kind][ids]
        rows = []
        for tag, bit in idx.bits[kind].items():
            n = int(np.count_nonzero(masks & np.uint64(1 << bit)))
            if n:
                rows.append((tag, n))
        facets[kind] = sorted(rows, key=lambda kv: (-kv[1], kv[0]))
    for kind, column, names in (
        ("language", idx.language, idx.language_names),
        ("source", idx.source, idx.source_names),
    ):
        counts = np.bincount(column[ids], minlength=len(names)) if len(ids) else []
        rows = [(names[i], int(n)) for i, n in enumerate(counts) if n]
        facets[kind] = sorted(rows, key=lambda kv: (-kv[1], kv[0]))[:50]
    return facets


def _rows(db, ids: list[int], match: str | None) -> list[dict]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {
        r["id"]: r
        for r in db.query(
            f"""SELECT id, url, source, title, summary, language, published, fetched_at, relevant,
                   cluster_id FROM items WHERE id IN ({marks})""",
            ids,
        )
    }
    snippets: dict[int, str] = {}
    if match and "*" in match:
        # FTS5 re-expands a prefix for every probe (there is no prefix index): cut the snippet
        # from the stored text here instead, falling back to FTS5 when no word is found.
        texts = dict(
            db.execute(
                f"SELECT id, title || ' ' || summary || ' ' || text FROM items "
                f"WHERE id IN ({marks})",
                ids,
            ).fetchall()
        )
        for item_id, text in texts.items():
            snip = _python_snippet(text, match)
            if snip:
                snippets[item_id] = snip
    if match:
        # One rowid = ? probe per item: FTS5 seeks each doclist; `rowid IN (...)` would not.
        for item_id in ids:
            if item_id in snippets:
                continue
            for (snip,) in _run(
                db,
                f"SELECT snippet(items_fts, -1, '{_START}', '{_END}', ' … ', 30) "
                f"FROM items_fts WHERE items_fts MATCH ? AND rowid = ?",
                [match, item_id],
            ):
                snippets[item_id] = snip
    tags: dict[int, list[dict]] = {}
    for item_id, kind, tag in db.execute(
        f"SELECT item_id, kind, tag FROM item_tags WHERE item_id IN ({marks}) "
        f"ORDER BY kind, score DESC",
        ids,
    ):
        tags.setdefault(item_id, []).append({"kind": kind, "tag": tag})
    out = []
    for item_id in ids:
        row = rows.get(item_id)
        if row is None:
            continue
        text = snippets.get(item_id) or _plain_snippet(row["summary"])
        row["snippet"] = text.replace(_START, "").replace(_END, "")
        row["snippet_html"] = highlight(text)
        row["tags"] = tags.get(item_id, [])
        del row["summary"]
        out.append(row)
    return out


def _python_snippet(text: str, match: str, words: int = 30) -> str | None:
    """A window of about `words` words around the first hit, hits wrapped in the markers."""
    terms = [t for t in re.findall(r'"([^"]+)"(\*?)', match)]
    patterns = []
    for phrase, star in terms:
        body = r"\s+".join(re.escape(w) for w in phrase.split())
        patterns.append(body + (r"\w*" if star else r"\b"))
    if not patterns:
        return None
    finder = re.compile(r"\b(?:" + "|".join(patterns) + ")", re.IGNORECASE)
    text = " ".join(text.split())
    first = finder.search(text)
    if not first:
        return None
    before = text[: first.start()].split(" ")
    start_chars = len(" ".join(before[:-8])) if len(before) > 8 else 0
    window = " ".join(text[start_chars:].split(" ")[:words])
    marked = finder.sub(lambda m: _START + m.group(0) + _END, window)
    return ("… " if start_chars else "") + marked + " …"


def _plain_snippet(text: str, length: int = 240) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[:length].rsplit(" ", 1)[0] + " …"


def highlight(snippet: str) -> Markup:
    """Escape scraped text, then mark the matched words (the markers are control characters)."""
    escaped = str(escape(snippet))
    escaped = escaped.replace(_START, "<mark>").replace(_END, "</mark>")
    # A snippet cut inside a match would leave an unclosed <mark>.
    opened = escaped.count("<mark>") - escaped.count("</mark>")
    return Markup(escaped + "</mark>" * max(0, opened))


def facet_counts(db, ids: list[int]) -> dict[str, list[tuple[str, int]]]:
    facets: dict[str, list[tuple[str, int]]] = {k: [] for k in FACET_KINDS}
    if not ids:
        return facets
    payload = json.dumps(ids)
    for kind, tag, n in db.execute(
        "SELECT kind, tag, count(*) AS n FROM item_tags WHERE item_id IN "
        "(SELECT value FROM json_each(?)) GROUP BY kind, tag ORDER BY n DESC, tag",
        [payload],
    ):
        facets[kind].append((tag, n))
    languages: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for source, language in db.execute(
        "SELECT source, language FROM items WHERE id IN (SELECT value FROM json_each(?))", [payload]
    ):
        sources[source] += 1
        languages[language or "unknown"] += 1
    for kind, counter in (("language", languages), ("source", sources)):
        facets[kind] = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    return facets


# -- exports ------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "id",
    "published",
    "source",
    "language",
    "title",
    "url",
    "regions",
    "topics",
    "relevant",
    "cluster_id",
    "snippet",
)


def export_rows(db, p: SearchParams, limit: int = EXPORT_LIMIT) -> list[dict]:
    """Every matching item (up to limit) in the chosen order, flattened for CSV/JSON."""
    match = fts_query(p.q) if p.q.strip() else None
    ids = _matching_ids(db, p, limit, match, _candidate_floor(db, match) if match else None)
    out = []
    for start in range(0, len(ids), 500):
        for row in _rows(db, ids[start : start + 500], match):
            out.append(
                {
                    "id": row["id"],
                    "published": row["published"] or row["fetched_at"],
                    "source": row["source"],
                    "language": row["language"],
                    "title": row["title"],
                    "url": row["url"],
                    "regions": [t["tag"] for t in row["tags"] if t["kind"] == "region"],
                    "topics": [t["tag"] for t in row["tags"] if t["kind"] == "topic"],
                    "relevant": row["relevant"],
                    "cluster_id": row["cluster_id"],
                    "snippet": row["snippet"],
                }
            )
    return out


def to_csv(rows: Iterable[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        values = []
        for col in EXPORT_COLUMNS:
            value = row.get(col)
            if isinstance(value, list):
                value = ";".join(value)
            value = "" if value is None else str(value)
            # Spreadsheets run cells starting with = + - @ as formulas: defuse scraped text.
            if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                value = "'" + value
            values.append(value)
        writer.writerow(values)
    return buffer.getvalue()


# -- weekly counts ------------------------------------------------------------------------------


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_counts(
    db,
    kind: str,
    since: str,
    until: str,
    p: SearchParams | None = None,
    top: int = 8,
    index=None,
    memo=None,
) -> dict:
    """Items per ISO week and per region or topic between since and until (inclusive days).

    Returns {"weeks": [monday ISO dates], "series": [{"tag", "counts": [...], "total"}]} with
    the `top` tags by total; other filters and the text query of p apply too.
    """
    if kind not in ("region", "topic"):
        raise SearchQueryError("Chart by 'region' or 'topic'.")
    start = week_start(date.fromisoformat(since))
    end = date.fromisoformat(until)
    if end < start:
        raise SearchQueryError("The start date is after the end date.")
    if (end - start).days > 366 * 10:
        raise SearchQueryError("Chart at most ten years at a time.")
    p = replace(p or SearchParams(), since=start.isoformat(), until=end.isoformat())
    match = fts_query(p.q) if p.q.strip() else None
    if index is not None:
        return _weekly_indexed(db, index, kind, start, end, p, match, top, memo or _no_memo)
    where, params = _filters(p)
    if match:
        where.insert(0, "items.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
        params.insert(0, match)
    sql = f"""SELECT date({_WHEN}, 'weekday 0', '-6 days') AS week, t.tag, count(*) AS n
              FROM items JOIN item_tags t ON t.item_id = items.id AND t.kind = ?
              WHERE {" AND ".join(where)} GROUP BY week, t.tag"""
    weeks = []
    day = start
    while day <= end:
        weeks.append(day.isoformat())
        day += timedelta(days=7)
    index = {w: i for i, w in enumerate(weeks)}
    series: dict[str, list[int]] = {}
    for week, tag, n in _run(db, sql, [kind, *params]):
        if week in index:
            series.setdefault(tag, [0] * len(weeks))[index[week]] += n
    ranked = sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:top]
    return {
        "kind": kind,
        "weeks": weeks,
        "series": [{"tag": tag, "counts": counts, "total": sum(counts)} for tag, counts in ranked],
    }


def _weeks(start: date, end: date) -> list[str]:
    weeks = []
    day = start
    while day <= end:
        weeks.append(day.isoformat())
        day += timedelta(days=7)
    return weeks


def _weekly_indexed(db, idx, kind, start: date, end: date, p, match, top: int, memo) -> dict:
    import numpy as np

    _, found, _ = _indexed_matches(db, idx, p, match, memo)
    weeks = _weeks(start, end)
    origin = np.datetime64(start.isoformat(), "D").astype(np.int64)
    week_of = (idx.day[found] - origin) // 7
    masks = idx.masks[kind][found]
    series = []
    for tag, bit in idx.bits[kind].items():
        selected = (masks & np.uint64(1 << bit)) != 0
        counts = np.bincount(week_of[selected], minlength=len(weeks))[: len(weeks)]
        if counts.sum():
            series.append((tag, [int(c) for c in counts]))
    ranked = sorted(series, key=lambda kv: (-sum(kv[1]), kv[0]))[:top]
    return {
        "kind": kind,
        "weeks": weeks,
        "series": [{"tag": tag, "counts": counts, "total": sum(counts)} for tag, counts in ranked],
    }


# -- items --------------------------------------------------------------------------------------


def item_detail(db, config, item_id: int) -> dict | None:
    """An item with its sources, tags with evidence and labels, and the other items of its story."""
    if not 0 <= item_id < 2**63:
        return None
    item = get_item(db, item_id)
    if item is None:
        return None
    labels = {"region": config.taxonomy.regions, "topic": config.taxonomy.topics}
    for tag in item["tags"]:
        cat = labels[tag["kind"]].get(tag["tag"]) if tag["kind"] in labels else None
        tag["label"] = getattr(cat, "label", None) or tag["tag"]
        tag["evidence_lines"] = evidence_lines(tag["evidence"])
    item["cluster"] = []
    if item.get("cluster_id") is not None:
        item["cluster"] = list(
            db.query(
                f"""SELECT id, title, source, url, language, {_WHEN} AS day FROM items
                WHERE cluster_id = ? AND id != ? ORDER BY {_WHEN} LIMIT 100""",
                [item["cluster_id"], item_id],
            )
        )
    return item


def evidence_lines(evidence: Any) -> list[str]:
    """Readable lines for stored evidence: 'term' in title (weight 2, nl)."""
    if isinstance(evidence, str):
        return [evidence]
    if isinstance(evidence, Mapping):
        evidence = [evidence]
    lines = []
    for entry in evidence or ():
        if isinstance(entry, Mapping) and entry.get("field") == "review":
            lines.append(f"Set by {entry.get('reviewer')}’s review of "
                         f"{str(entry.get('reviewed_at'))[:10]}")
        elif isinstance(entry, Mapping) and entry.get("field") == "home":
            lines.append(f"The outlet’s country ({entry.get('term')}); no rule placed it elsewhere")
        elif isinstance(entry, Mapping):
            term = entry.get("term") or entry.get("terms") or "?"
            where = entry.get("field") or entry.get("where") or ""
            extra = ", ".join(
                f"{k} {entry[k]}" for k in ("weight", "lang") if entry.get(k) is not None
            )
            lines.append(f"“{term}” in {where}" + (f" ({extra})" if extra else ""))
        else:
            lines.append(str(entry))
    return lines


# -- source health ------------------------------------------------------------------------------

DROP_RATIO = 0.3  # a week below 30% of the previous four weeks' average ...
DROP_MIN_BASE = 5.0  # ... when that average is at least 5 items a week


class SourceVolumes:
    """item_sources' first_seen times since a floor, sorted per source, kept up to date in memory.

    The source health page counts each source's items in 8 weekly windows ending now: 320 range
    counts on a million items (~16 ms). Here a window is two bisections of a sorted list, and
    keeping up is one query for the rows added since the last look (rowids of item_sources grow);
    a row updated or deleted moves the counter of migration m600, and everything is read again.
    """

    MARGIN = timedelta(days=7)  # rows kept before the oldest window, so that time can move on

    def __init__(self):
        self._lock = threading.Lock()
        self._floor: str | None = None
        self._max_rowid = 0
        self._changes = None
        self._times: dict[str, list[str]] = {}

    def counts(self, db, edges: list[str]) -> dict[str, list[int]]:
        """{source: [rows with edges[i] <= first_seen < edges[i + 1]]} for every source seen."""
        with self._lock:
            newest, changes = db.execute(
                "SELECT (SELECT coalesce(max(rowid), 0) FROM item_sources), "
                "(SELECT n FROM web_item_sources_changes WHERE id = 1)"
            ).fetchone()
            if (
                self._floor is None
                or changes != self._changes
                or newest < self._max_rowid
                or edges[0] < self._floor
                or edges[0] > _iso_seconds(_parse_seconds(self._floor) + 2 * self.MARGIN)
            ):
                self._load(db, edges[0], newest, changes)
            elif newest > self._max_rowid:
                self._catch_up(db, newest)
            out = {}
            for source, times in self._times.items():
                at = [bisect.bisect_left(times, edge) for edge in edges]
                out[source] = [at[i + 1] - at[i] for i in range(len(edges) - 1)]
            return out

    def _load(self, db, oldest_edge: str, newest: int, changes) -> None:
        floor = _iso_seconds(_parse_seconds(oldest_edge) - self.MARGIN)
        times: dict[str, list[str]] = {}
        for source, seen in db.execute(
            "SELECT source, first_seen FROM item_sources WHERE first_seen >= ? AND rowid <= ?",
            [floor, newest],
        ):
            if isinstance(seen, str):
                times.setdefault(source, []).append(seen)
        for values in times.values():
            values.sort()
        self._floor, self._times = floor, times
        self._max_rowid, self._changes = newest, changes

    def _catch_up(self, db, newest: int) -> None:
        for source, seen in db.execute(
            "SELECT source, first_seen FROM item_sources WHERE rowid > ? AND rowid <= ?",
            [self._max_rowid, newest],
        ):
            if isinstance(seen, str) and seen >= self._floor:
                bisect.insort(self._times.setdefault(source, []), seen)
        self._max_rowid = newest


def _parse_seconds(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def _iso_seconds(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def source_report(
    db,
    now: datetime | None = None,
    weeks: int = 8,
    volumes: SourceVolumes | None = None,
) -> list[dict]:
    """Each configured source's health with weekly volumes (oldest first) and a drop warning.

    volumes (a SourceVolumes the caller keeps between calls) counts the weeks in memory, with
    the same answers; without it each week is a range count on the (source, first_seen) index.
    """
    now = now or datetime.now(UTC)
    starts = [now - timedelta(days=7 * (weeks - i)) for i in range(weeks + 1)]
    edges = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in starts]
    counted = volumes.counts(db, edges) if volumes is not None else None
    report = []
    for row in db.query("SELECT * FROM sources WHERE configured = 1 ORDER BY name"):
        if counted is not None:
            weekly = counted.get(row["name"]) or [0] * weeks
        else:
            # One range count per source and week on the (source, first_seen) index: counting
            # eight weeks of the whole archive in one grouped scan cost ~100 ms on a million items.
            weekly = [
                db.execute(
                    "SELECT count(*) FROM item_sources WHERE source = ? AND first_seen >= ? "
                    "AND first_seen < ?",
                    [row["name"], edges[i], edges[i + 1]],
                ).fetchone()[0]
                for i in range(weeks)
            ]
        row["weekly"] = weekly
        row["week_starts"] = [s.date().isoformat() for s in starts[:-1]]
        base = sum(weekly[-5:-1]) / 4
        row["warning"] = None
        if base >= DROP_MIN_BASE and weekly[-1] < DROP_RATIO * base:
            row["warning"] = (
                f"Volume dropped: {weekly[-1]} items in the last 7 days against "
                f"{base:.0f} a week before. Check the source's page and selectors."
            )
        if row["consecutive_failures"] >= 3:
            failing = f"Failing: {row['consecutive_failures']} crawls in a row."
            row["warning"] = f"{failing} {row['warning'] or ''}".strip()
        row["recent_errors"] = [
            dict(zip(("url", "error", "at"), r, strict=True))
            for r in db.execute(
                "SELECT url, error, at FROM fetch_log WHERE source = ? ORDER BY at DESC LIMIT 5",
                [row["name"]],
            )
        ]
        report.append(row)
    return report


def known_values(db) -> dict[str, list[str]]:
    """Values offered in filter menus: languages and sources present in the archive."""
    languages = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT language FROM items WHERE language IS NOT NULL ORDER BY language"
        )
    ]
    sources = [r[0] for r in db.execute("SELECT name FROM sources ORDER BY name")]
    return {"languages": languages, "sources": sources}
