"""Story clusters in the archive: fingerprints, candidate keys and document frequencies stored
in SQLite, matched incrementally at ingest (assign_clusters) and rebuilt by `monitor retag`
(rebuild_clusters). The linking itself is monitor.clustering's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from monitor.clustering import (
    ANCHORS_VERSION,
    MAX_CANDIDATES,
    Doc,
    DocFreq,
    Linker,
    keys_of,
    link_with_keys,
    same_story,
    split_facts,
)
from monitor.story_facts import NO_FACTS

# Marks the stored anchors of an item without a published date (Doc.dated); stored anchors made
# before it was kept read as dated, as they were linked then, until a retag stores them again.
UNDATED = "%undated"


def stored_fingerprints(db, item_ids: list[int]) -> dict[int, tuple[np.ndarray, frozenset[str]]]:
    """item id -> (text signature, lede stems) of its stored fingerprint: what depends on the text
    only, not on the tags."""
    out = {}
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        for item_id, sig, anchors in db.execute(
                f"""SELECT item_id, text_sig, anchors FROM cluster_fingerprints
                    WHERE item_id IN ({','.join('?' * len(chunk))})""", chunk).fetchall():
            stems = _stems_of_anchors(anchors)
            if stems is not None:
                out[item_id] = (np.frombuffer(sig, dtype=np.uint32), stems)
    return out


def _stems_of_anchors(anchors: str) -> frozenset[str] | None:
    """The stored anchors without concepts (facts "#..." kept); None when an older version made them."""
    parts = anchors.split("\x1f") if anchors else [""]
    if parts[0] != ANCHORS_VERSION:
        return None
    return frozenset(a for a in parts[1:] if a and a[0] not in "@%")


_FINGERPRINT_SQL = """SELECT item_id, at, complete, relevant, text_sig, anchors, regions
                      FROM cluster_fingerprints"""


def stored_fingerprint_rows(db) -> dict[int, tuple]:
    """Every stored fingerprint row by item id (read once by a retag, in one scan)."""
    return {row[0]: row for row in db.execute(_FINGERPRINT_SQL)}


def fingerprints_of(rows: dict[int, tuple], item_ids: Iterable[int]
                    ) -> dict[int, tuple[np.ndarray, frozenset[str]]]:
    """stored_fingerprints, from rows read by stored_fingerprint_rows."""
    out = {}
    for item_id in item_ids:
        row = rows.get(item_id)
        if row is not None:
            stems = _stems_of_anchors(row[5])
            if stems is not None:
                out[item_id] = (np.frombuffer(row[4], dtype=np.uint32), stems)
    return out



# -- stored clusters ------------------------------------------------------------------------------

def _fingerprint_row(doc: Doc) -> tuple:
    return (doc.id, doc.at or 0.0, int(doc.complete), int(doc.relevant), doc.text_sig.tobytes(),
            "\x1f".join([ANCHORS_VERSION, *([] if doc.dated else [UNDATED]), *sorted(doc.anchors),
                        *(doc.facts or NO_FACTS).strings()]),
            "\x1f".join(sorted(doc.regions)))


def _doc_from_fingerprint(row) -> Doc:
    item_id, at, complete, relevant, sig, anchors, regions = row
    parts = anchors.split("\x1f")
    stems, facts = split_facts(a for a in parts if a and a[0] != "%")
    return Doc(id=item_id, at=at, complete=bool(complete), relevant=bool(relevant),
               dated=UNDATED not in parts,
               text_sig=np.frombuffer(sig, dtype=np.uint32), anchors=stems,
               regions=frozenset(regions.split("\x1f")) if regions else frozenset(), facts=facts)


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


def candidates_sql(keys: int) -> str:
    """The stored items sharing most of a doc's `keys` candidate keys within a date range
    (parameters: the keys, then the range); read from the cluster_keys_cover index alone."""
    return f"""SELECT item_id FROM cluster_keys WHERE key IN ({",".join("?" * keys)})
               AND at BETWEEN ? AND ? GROUP BY item_id ORDER BY count(*) DESC
               LIMIT {MAX_CANDIDATES}"""


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
        candidates = [r[0] for r in db.execute(
            candidates_sql(len(keys)), [*keys, at - window, at + window])]
        linked: set[int] = set()
        if candidates:
            cmarks = ",".join("?" * len(candidates))
            for row in db.execute(
                    f"""SELECT f.item_id, f.at, f.complete, f.relevant, f.text_sig, f.anchors,
                               f.regions, i.cluster_id
                        FROM cluster_fingerprints f JOIN items i ON i.id = f.item_id
                        WHERE f.item_id IN ({cmarks})""", candidates).fetchall():
                # a candidate in a story this doc already joined needs no test (as in _link):
                # the copies of one report are most of each other's candidates
                if row[7] is None or row[7] in linked:
                    continue
                if same_story(doc, _doc_from_fingerprint(row[:7]), settings, df):
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


# New items are matched against recent ones only, so only recent items need stored candidate keys
# (a generous four windows back from the newest item; an item re-processed later gets its own).
KEYS_WINDOWS = 4


def recent_keys_linker(settings, capacity: int = 1024) -> Linker:
    """A Linker for rebuild_clusters' `linked`: it keeps the keys rebuild_clusters stores."""
    return Linker(settings, keys_within=KEYS_WINDOWS * settings.cluster_window_days,
                  capacity=capacity)


def rebuild_clusters(db, settings, docs: list[Doc], stored: dict[int, tuple] | None = None,
                     stamps: dict[int, str | None] | None = None,
                     linked: Linker | None = None) -> tuple[int, int]:
    """Bulk: recluster every doc from scratch (monitor retag); (clusters, multi-item clusters).

    The tables end as if they were emptied and refilled, but only rows that differ are written:
    a retag after a small taxonomy change moves few items. `stored` (stored_fingerprint_rows)
    and `stamps` (item id -> coalesce(published, fetched_at)) spare reading them again; `linked`,
    a Linker (made by recent_keys_linker) that was fed exactly `docs`, spares linking them.
    """
    if linked is not None and linked.in_order and len(linked.order) == len(docs):
        members, recent_keys, df = linked.result()
    else:
        members, recent_keys, df = link_with_keys(
            docs, settings, keys_within=KEYS_WINDOWS * settings.cluster_window_days)
    ids = {d.id for d in docs}

    # fingerprints
    if stored is None:
        stored = stored_fingerprint_rows(db)
    fingerprints = [_fingerprint_row(d) for d in docs]
    gone = [(i,) for i in stored if i not in ids]
    db.conn.executemany("DELETE FROM cluster_fingerprints WHERE item_id = ?", gone)
    db.conn.executemany("INSERT OR REPLACE INTO cluster_fingerprints VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [r for r in fingerprints if stored.get(r[0]) != r])

    # candidate keys (as keys_of gives them, linking computed them) and stem frequencies
    at_of = {d.id: d.at or 0.0 for d in docs if d.id in recent_keys}
    keys = {i: sorted((k, i, at_of[i]) for k in ks) for i, ks in recent_keys.items()}
    old_keys: dict[int, list[tuple]] = defaultdict(list)
    for row in db.execute("SELECT key, item_id, at FROM cluster_keys"):
        old_keys[row[1]].append(row)
    stale = [(i,) for i, rows in old_keys.items() if i not in keys or sorted(rows) != keys[i]]
    db.conn.executemany("DELETE FROM cluster_keys WHERE item_id = ?", stale)
    rows = [r for i, new in keys.items() if sorted(old_keys.get(i, ())) != new for r in new]
    rows.sort()  # in index order: B-tree inserts then touch neighbouring pages
    db.conn.executemany("INSERT INTO cluster_keys (key, item_id, at) VALUES (?, ?, ?)", rows)
    old_df = dict(db.execute("SELECT stem, df FROM cluster_df"))
    db.conn.executemany("DELETE FROM cluster_df WHERE stem = ?",
                        [(stem,) for stem in old_df if stem not in df.counts])
    db.conn.executemany("INSERT OR REPLACE INTO cluster_df (stem, df) VALUES (?, ?)",
                        [(stem, n) for stem, n in df.counts.items() if old_df.get(stem) != n])

    # only the items whose cluster changed are written
    current = dict(db.conn.execute("SELECT id, cluster_id FROM items"))
    db.conn.executemany("UPDATE items SET cluster_id = ? WHERE id = ?",
                        [(ids_[0], i) for i, ids_ in members.items() if current.get(i) != ids_[0]])

    # clusters: representative (earliest complete item, else earliest), size, first and last date
    if stamps is None or not ids <= stamps.keys():
        stamps = dict(db.execute("SELECT id, coalesce(published, fetched_at) FROM items"))
    complete = {d.id: d.complete for d in docs}
    founders = {ids_[0]: ids_ for ids_ in members.values()}
    clusters = {}
    for cid, member_ids in founders.items():
        if len(member_ids) == 1:
            clusters[cid] = (cid, cid, 1, stamps.get(cid), stamps.get(cid))
            continue
        # as SQL orders coalesce(published, fetched_at), id: no date first
        order = sorted(member_ids,
                       key=lambda i: (stamps.get(i) is not None, stamps.get(i) or "", i))
        rep = next((i for i in order if complete[i]), order[0])
        clusters[cid] = (cid, rep, len(order), stamps.get(order[0]), stamps.get(order[-1]))
    old_clusters = {r[0]: r for r in db.execute(
        "SELECT id, representative_id, size, first_at, last_at FROM clusters")}
    db.conn.executemany("DELETE FROM clusters WHERE id = ?",
                        [(cid,) for cid in old_clusters if cid not in clusters])
    db.conn.executemany(
        "INSERT OR REPLACE INTO clusters (id, representative_id, size, first_at, last_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [row for cid, row in clusters.items() if old_clusters.get(cid) != row])
    multi = sum(1 for ids_ in founders.values() if len(ids_) > 1)
    return len(founders), multi


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
