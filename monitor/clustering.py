"""Story clusters: near-duplicates (MinHash over word shingles) and the same story across outlets and
languages (shared names, numbers and taxonomy concepts) within a time window.

`items.cluster_id` is the id of the item that founded the cluster; the `clusters` table names the
representative (the earliest complete item). The pure part builds fingerprints and links them;
the SQL part keeps LSH band keys in `cluster_keys` so each ingest batch is matched incrementally.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from datasketch import MinHash

from monitor.language import clean, fold, normalise

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
MAX_ANCHOR_KEYS = 24
MAX_CANDIDATES = 12
TEXT_CHARS = 600
LEDE_CHARS = 400
STEM = 5
CONCEPT_WEIGHT = 1.5
_PROTO = MinHash(num_perm=NUM_PERM, seed=20261202)
# Capitalised words that are not names in several languages (sentence starts are skipped anyway).
_NOT_NAMES = frozenset(normalise(
    "The This That These Those There Their They What When Where Which While With From After Before "
    "Mr Mrs Ms Dr Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March "
    "April May June July August September October November December De Het Een Le La Les Un Une Des "
    "Der Die Das Ein Eine Il Lo Gli Una El Los Las Del Και Το Τα Η Ο Οι Των Στο Στη Στην W Na Z Do "
    "I A U O Et Und En Y E Van Von Di Da Dans Sur Pour Per Con Par Am Im Al Ha Є Pour"
).split())


@dataclass
class Doc:
    id: int
    at: float | None           # days since the epoch (published, else fetched); None if unknown
    complete: bool             # has the article's full text
    relevant: bool
    text_sig: np.ndarray       # MinHash values (uint32) of word 3-shingles
    anchors: frozenset[str]    # word stems of the lede, numbers; plus "@region:..."/"@topic:..." concepts
    regions: frozenset[str]
    weights: dict[str, float] | None = None  # IDF of each anchor when the doc was matched
    total: float = 0.0

    def weigh(self, df: DocFreq) -> None:
        idf = df.idf
        self.weights = {a: idf(a) for a in self.anchors}
        self.total = sum(self.weights.values())


def _days(stamp: str | None) -> float | None:
    if not stamp:
        return None
    stamp = stamp.strip()
    if re.fullmatch(r"\d{4}-\d{2}", stamp):
        stamp += "-15"  # a month only: its middle
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp() / 86400.0


def text_signature(words: list[str]) -> np.ndarray:
    shingles = [" ".join(words[i:i + 3]).encode() for i in range(max(1, len(words) - 2))]
    m = MinHash(num_perm=NUM_PERM, hashfunc=zlib.crc32, permutations=_PROTO.permutations,
                scheme=_PROTO.scheme)
    if shingles and shingles[0]:
        m.update_batch(shingles)
    return m.hashvalues.astype(np.uint32)


def stems_of(words: list[str]) -> set[str]:
    """Crude language-independent stems: the first 5 letters of words of 4+ letters, and numbers.

    Inflected forms (Ρόδο/Ρόδου, Tunisia/Tunisie, migranti/migrantes) then share a feature.
    """
    out = set()
    for w in words:
        if w.isdigit():
            if len(w) >= 2 and not (len(w) == 4 and w[:2] in ("19", "20")):
                out.add(w.lstrip("0") or "0")
        elif len(w) >= 4 and w not in _NOT_NAMES:
            out.add(w[:STEM])
    return out


def make_doc(item_id: int, title: str, summary: str, text: str, *, published: str | None = None,
             fetched_at: str | None = None, complete: bool = True, relevant: bool = True,
             regions: frozenset[str] = frozenset(), topics: frozenset[str] = frozenset()) -> Doc:
    title, summary, text = clean(title), clean(summary), clean((text or "")[: TEXT_CHARS * 2])
    body = " ".join(x for x in (title, summary, text[:TEXT_CHARS]) if x)
    words = normalise(body).split()
    lede = normalise(" ".join(x for x in (title, summary or text[:LEDE_CHARS]) if x)).split()
    anchors = stems_of(lede)
    if relevant:
        anchors |= {f"@region:{r}" for r in regions} | {f"@topic:{t}" for t in topics}
    at = _days(published) or _days(fetched_at)
    return Doc(id=item_id, at=at, complete=complete, relevant=relevant,
               text_sig=text_signature(words), anchors=frozenset(anchors),
               regions=frozenset(regions) if relevant else frozenset())


def doc_from_row(row: dict, result) -> Doc:
    return make_doc(row["id"], row["title"] or "", row["summary"] or "", row["text"] or "",
                    published=row.get("published"), fetched_at=row.get("fetched_at"),
                    complete=bool(row.get("full_text")) and bool(row.get("text")),
                    relevant=result.relevant, regions=frozenset(result.slugs("region")),
                    topics=frozenset(result.slugs("topic")))


class DocFreq:
    """How many documents carry each stem: rare shared stems say "same story", common ones do not."""

    def __init__(self, counts: dict[str, int] | None = None, n: int = 0):
        self.counts = counts if counts is not None else {}
        self.n = n
        self._cache: dict[str, float] = {}
        self._cached_at = n

    def add(self, doc: Doc) -> None:
        self.n += 1
        counts = self.counts
        for a in doc.anchors:
            if a[0] != "@":
                counts[a] = counts.get(a, 0) + 1

    def idf(self, stem: str) -> float:
        if stem[0] == "@":
            return CONCEPT_WEIGHT
        # weights move slowly as the collection grows: recompute them when it grew by a tenth
        if self.n > self._cached_at * 1.1 + 10:
            self._cache.clear()
            self._cached_at = self.n
        value = self._cache.get(stem)
        if value is None:
            value = self._cache[stem] = math.log((self.n + 2) / (self.counts.get(stem, 0) + 1))
        return value


def _anchor_key(anchor: str) -> int:
    return int.from_bytes(hashlib.blake2b(anchor.encode(), digest_size=7).digest(), "big") | (1 << 60)


def keys_of(doc: Doc, df: DocFreq) -> list[int]:
    """LSH band keys of the text signature, plus the doc's rarest stems (candidate generation)."""
    sig = doc.text_sig
    keys = [hash((b, sig[b * ROWS:(b + 1) * ROWS].tobytes())) for b in range(BANDS)]
    stems = sorted((a for a in doc.anchors if a[0] != "@"),
                   key=lambda a: (df.counts.get(a, 0), a))[:MAX_ANCHOR_KEYS]
    keys.extend(_anchor_key(a) for a in stems)
    return keys


def text_similarity(a: Doc, b: Doc) -> float:
    return float(np.count_nonzero(a.text_sig == b.text_sig)) / NUM_PERM


def story_similarity(a: Doc, b: Doc, df: DocFreq) -> float:
    """IDF-weighted overlap of lede stems and taxonomy concepts (shared weight / smaller side).

    `a` is the doc being matched (weighed now); `b` keeps the weights it got when it was matched.
    """
    shared = a.anchors & b.anchors
    if not shared:
        return 0.0
    if a.weights is None:
        a.weigh(df)
    if b.weights is None:
        b.weigh(df)
    weights = a.weights
    inter = sum(weights[x] for x in shared)
    smaller = min(a.total, b.total)
    return inter / smaller if smaller else 0.0


def same_story(a: Doc, b: Doc, settings, df: DocFreq) -> bool:
    """Near-duplicate text, or the same rare words, names, numbers and concepts in the lede."""
    if a.at is not None and b.at is not None and abs(a.at - b.at) > settings.cluster_window_days:
        return False
    if text_similarity(a, b) >= settings.cluster_text_similarity:
        return True
    if a.at is None or b.at is None:
        return False  # without both dates only the same text, not the same story, can be told
    if a.relevant != b.relevant:
        return False
    if a.regions and b.regions and not (a.regions & b.regions):
        return False
    return story_similarity(a, b, df) >= settings.cluster_anchor_similarity


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def link_docs(docs: list[Doc], settings, background: DocFreq | None = None) -> dict[int, list[int]]:
    """Pure: doc id -> ids of the cluster's members, founder (earliest) first.

    `background` seeds the document frequencies (e.g. from other text) so that common words
    weigh little even in a small collection.
    """
    order = sorted(docs, key=lambda d: (d.at or 0.0, d.id))
    df = DocFreq(dict(background.counts), background.n) if background else DocFreq()
    postings: dict[int, list[int]] = defaultdict(list)
    by_pos = order
    uf = _UnionFind()
    window = settings.cluster_window_days
    for pos, doc in enumerate(order):
        doc.weigh(df)
        counts: dict[int, int] = defaultdict(int)
        for key in keys_of(doc, df):
            plist = postings[key]
            # drop postings that fell out of the window (docs arrive in time order)
            if len(plist) > 40:
                del plist[:-20]  # only the latest postings are looked at
            while plist and (doc.at or 0.0) - (by_pos[plist[0]].at or 0.0) > window:
                plist.pop(0)
            for other in plist[-20:]:
                counts[other] += 1
            plist.append(pos)
        for other in heapq.nlargest(MAX_CANDIDATES, counts, key=counts.__getitem__):
            if same_story(doc, by_pos[other], settings, df):
                uf.union(pos, other)
        df.add(doc)
    members: dict[int, list[int]] = defaultdict(list)
    for pos in range(len(order)):
        members[uf.find(pos)].append(pos)
    out = {}
    for positions in members.values():
        ids = [order[p].id for p in sorted(positions)]
        for i in ids:
            out[i] = ids
    return out


# -- stored clusters ------------------------------------------------------------------------------

def _fingerprint_row(doc: Doc) -> tuple:
    return (doc.id, doc.at or 0.0, int(doc.complete), int(doc.relevant), doc.text_sig.tobytes(),
            "\x1f".join(sorted(doc.anchors)), "\x1f".join(sorted(doc.regions)))


def _doc_from_fingerprint(row) -> Doc:
    item_id, at, complete, relevant, sig, anchors, regions = row
    return Doc(id=item_id, at=at, complete=bool(complete), relevant=bool(relevant),
               text_sig=np.frombuffer(sig, dtype=np.uint32),
               anchors=frozenset(anchors.split("\x1f")) if anchors else frozenset(),
               regions=frozenset(regions.split("\x1f")) if regions else frozenset())


def _refresh(db, cluster_ids) -> None:
    """Recompute each cluster's row (size, representative, dates) from its members."""
    for cid in cluster_ids:
        rows = db.execute(
            """SELECT i.id, coalesce(i.published, i.fetched_at) AS at,
                      (i.full_text = 1 AND i.text != '') AS complete
               FROM items i WHERE i.cluster_id = ? ORDER BY at, i.id""", [cid]).fetchall()
        if not rows:
            db.execute("DELETE FROM clusters WHERE id = ?", [cid])
            continue
        complete = [r for r in rows if r[2]]
        rep = (complete or rows)[0][0]
        db.execute(
            """INSERT INTO clusters (id, representative_id, size, first_at, last_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET representative_id = excluded.representative_id,
                 size = excluded.size, first_at = excluded.first_at, last_at = excluded.last_at""",
            [cid, rep, len(rows), rows[0][1], rows[-1][1]])


def _stored_df(db, stems: set[str]) -> DocFreq:
    """Document frequencies of these stems in the archive (the cluster_df table)."""
    counts: dict[str, int] = {}
    stems_list = sorted(stems)
    for start in range(0, len(stems_list), 500):
        chunk = stems_list[start:start + 500]
        counts.update(db.execute(
            f"SELECT stem, df FROM cluster_df WHERE stem IN ({','.join('?' * len(chunk))})",
            chunk).fetchall())
    n = db.execute("SELECT count(*) FROM cluster_fingerprints").fetchone()[0]
    return DocFreq(counts, n)


def _count_stems(db, docs: list[Doc], sign: int) -> None:
    counts: dict[str, int] = defaultdict(int)
    for doc in docs:
        for a in doc.anchors:
            if a[0] != "@":
                counts[a] += 1
    db.conn.executemany(
        """INSERT INTO cluster_df (stem, df) VALUES (?, ?)
           ON CONFLICT(stem) DO UPDATE SET df = max(0, df + excluded.df)""",
        [(stem, sign * n) for stem, n in counts.items()])


def assign_clusters(db, settings, docs: list[Doc]) -> None:
    """Incremental: match each doc against stored fingerprints in the window; merge if it bridges."""
    if not docs:
        return
    window = settings.cluster_window_days
    ids = [d.id for d in docs]
    marks = ",".join("?" * len(ids))
    old = {r[0] for r in db.execute(
        f"SELECT DISTINCT cluster_id FROM items WHERE id IN ({marks}) AND cluster_id IS NOT NULL", ids)}
    previous = [_doc_from_fingerprint(r) for r in db.execute(
        f"""SELECT item_id, at, complete, relevant, text_sig, anchors, regions
            FROM cluster_fingerprints WHERE item_id IN ({marks})""", ids).fetchall()]
    if previous:
        _count_stems(db, previous, -1)
    db.execute(f"DELETE FROM cluster_keys WHERE item_id IN ({marks})", ids)
    db.execute(f"DELETE FROM cluster_fingerprints WHERE item_id IN ({marks})", ids)
    db.execute(f"UPDATE items SET cluster_id = NULL WHERE id IN ({marks})", ids)
    df = _stored_df(db, {a for d in docs for a in d.anchors if a[0] != "@"})
    touched = set(old)
    for doc in sorted(docs, key=lambda d: (d.at or 0.0, d.id)):
        at = doc.at or 0.0
        doc.weigh(df)
        keys = keys_of(doc, df)
        kmarks = ",".join("?" * len(keys))
        candidates = [r[0] for r in db.execute(
            f"""SELECT item_id FROM cluster_keys WHERE key IN ({kmarks}) AND at BETWEEN ? AND ?
                GROUP BY item_id ORDER BY count(*) DESC LIMIT {MAX_CANDIDATES}""",
            [*keys, at - window, at + window])]
        linked: set[int] = set()
        if candidates:
            cmarks = ",".join("?" * len(candidates))
            for row in db.execute(
                    f"""SELECT f.item_id, f.at, f.complete, f.relevant, f.text_sig, f.anchors,
                               f.regions, i.cluster_id
                        FROM cluster_fingerprints f JOIN items i ON i.id = f.item_id
                        WHERE f.item_id IN ({cmarks})""", candidates).fetchall():
                if row[7] is not None and same_story(doc, _doc_from_fingerprint(row[:7]), settings, df):
                    linked.add(row[7])
        cluster_id = min(linked) if linked else doc.id
        others = linked - {cluster_id}
        if others:
            omarks = ",".join("?" * len(others))
            db.execute(f"UPDATE items SET cluster_id = ? WHERE cluster_id IN ({omarks})",
                       [cluster_id, *others])
            touched |= others
        db.execute("UPDATE items SET cluster_id = ? WHERE id = ?", [cluster_id, doc.id])
        db.execute("INSERT INTO cluster_fingerprints VALUES (?, ?, ?, ?, ?, ?, ?)",
                   _fingerprint_row(doc))
        db.conn.executemany("INSERT INTO cluster_keys (key, item_id, at) VALUES (?, ?, ?)",
                            [(k, doc.id, at) for k in keys])
        df.add(doc)
        touched.add(cluster_id)
    _count_stems(db, docs, +1)
    _refresh(db, touched)


def rebuild_clusters(db, settings, docs: list[Doc]) -> tuple[int, int]:
    """Bulk: recluster every doc from scratch (monitor retag). Returns (clusters, multi-item clusters)."""
    members = link_docs(docs, settings)
    db.execute("DELETE FROM cluster_keys")
    db.execute("DELETE FROM cluster_fingerprints")
    db.execute("DELETE FROM cluster_df")
    db.execute("DELETE FROM clusters")
    db.conn.executemany("INSERT INTO cluster_fingerprints VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (_fingerprint_row(d) for d in docs))
    df = DocFreq()
    rows = []
    # New items are matched against recent ones only, so only recent items need candidate keys
    # (a generous four windows back from the newest item; an item re-processed later gets its own).
    latest = max((d.at for d in docs if d.at is not None), default=0.0)
    horizon = latest - 4 * settings.cluster_window_days
    for d in sorted(docs, key=lambda d: (d.at or 0.0, d.id)):
        if d.at is None or d.at >= horizon:
            rows.extend((k, d.id, d.at or 0.0) for k in keys_of(d, df))
        df.add(d)
    db.conn.executemany("INSERT INTO cluster_keys (key, item_id, at) VALUES (?, ?, ?)", rows)
    db.conn.executemany("INSERT INTO cluster_df (stem, df) VALUES (?, ?)", df.counts.items())
    db.conn.executemany("UPDATE items SET cluster_id = ? WHERE id = ?",
                        ((ids[0], i) for i, ids in members.items()))
    founders = {ids[0]: ids for ids in members.values()}
    multi = [cid for cid, ids in founders.items() if len(ids) > 1]
    singles = [cid for cid, ids in founders.items() if len(ids) == 1]
    db.conn.executemany(
        """INSERT INTO clusters (id, representative_id, size, first_at, last_at)
           SELECT id, id, 1, coalesce(published, fetched_at), coalesce(published, fetched_at)
           FROM items WHERE id = ?""", ((cid,) for cid in singles))
    _refresh(db, multi)
    return len(founders), len(multi)


def cluster_info(db, cluster_id: int) -> dict | None:
    row = db.execute("SELECT id, representative_id, size, first_at, last_at FROM clusters WHERE id = ?",
                     [cluster_id]).fetchone()
    if row is None:
        return None
    members = [dict(zip(("id", "source", "title", "language", "at"), r, strict=True)) for r in db.execute(
        """SELECT id, source, title, language, coalesce(published, fetched_at) AS at FROM items
           WHERE cluster_id = ? ORDER BY at, id LIMIT 200""", [cluster_id])]
    return {"id": row[0], "representative_id": row[1], "size": row[2], "first_at": row[3],
            "last_at": row[4], "members": members}


def evaluate_clusters(stories: dict[int, str], members: dict[int, list[int]]) -> dict:
    """Purity of predicted clusters and the share of true same-story pairs clustered together."""
    clusters = {tuple(ids) for ids in members.values()}
    n = sum(len(c) for c in clusters)
    majority = 0
    for ids in clusters:
        counts: dict[str, int] = defaultdict(int)
        for i in ids:
            counts[stories[i]] += 1
        majority += max(counts.values())
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, story in stories.items():
        by_story[story].append(i)
    pairs = together = 0
    for ids in by_story.values():
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pairs += 1
                together += members[ids[x]] is members[ids[y]] or members[ids[x]] == members[ids[y]]
    return {"items": n, "clusters": len(clusters), "purity": majority / n if n else 1.0,
            "pairs": pairs, "pair_recall": together / pairs if pairs else 1.0}
