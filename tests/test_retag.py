"""`monitor retag` writes only what changed: a second retag with the same taxonomy writes nothing,
and a taxonomy change rewrites exactly the items it affects, ending where a fresh archive would."""

from __future__ import annotations

import json
import tomllib

import tomli_w

from monitor.config import load_config
from monitor.store import open_db, save_items
from monitor.tagging import matcher_for, process_items, retag_all
from tests.helpers import DATA

TABLES = {
    "items": "SELECT id, language, relevant, tagged_at, cluster_id FROM items ORDER BY id",
    "item_tags": "SELECT * FROM item_tags ORDER BY item_id, kind, tag",
    "clusters": "SELECT * FROM clusters ORDER BY id",
    "cluster_fingerprints": "SELECT * FROM cluster_fingerprints ORDER BY item_id",
    "cluster_keys": "SELECT key, item_id, at FROM cluster_keys ORDER BY key, item_id, at",
    "cluster_df": "SELECT * FROM cluster_df ORDER BY stem",
}


def _rows():
    lines = (DATA / "labelled" / "clusters.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()][:120]


def _archive(config):
    """A real archive: labelled stories over two weeks (some with full text), tagged at ingest."""
    db = open_db(config.storage.database)
    items = []
    for i, r in enumerate(_rows()):
        day = 1 + i % 14
        text = f"{r.get('lede') or ''} {r['title']}" if i % 3 == 0 else ""
        items.append({"url": f"https://news.example/{i}", "url_keys": [f"news.example/{i}"],
                      "source": "news", "title": r["title"], "summary": r.get("lede") or "",
                      "text": text, "declared_language": r["lang"],
                      "published": f"2026-11-{day:02d}T{8 + i % 10:02d}:00:00Z",
                      "fetched_at": f"2026-11-{day:02d}T20:00:00Z", "full_text": int(bool(text))})
    ids = [i for i, _ in save_items(db, items)]
    for start in range(0, len(ids), 25):
        process_items(db, config, ids[start:start + 25])
    return db


def _snapshot(db, without=()):
    out = {}
    for name, sql in TABLES.items():
        rows = db.execute(sql).fetchall()
        if name == "items" and "tagged_at" in without:
            rows = [(r[0], r[1], r[2], r[4]) for r in rows]
        out[name] = rows
    return out


def _config_with(base_path, directory, change):
    """The test's config (same taxonomy file contents) with one change, in its own directory."""
    raw = tomllib.loads(base_path.read_text(encoding="utf-8"))
    change(raw)
    directory.mkdir()
    path = directory / "config.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return load_config(path)


def test_a_second_retag_with_the_same_taxonomy_writes_nothing(config):
    db = _archive(config)
    try:
        retag_all(db, config)
        before = _snapshot(db)
        changes = db.conn.total_changes
        stats = retag_all(db, config)
        assert db.conn.total_changes == changes  # not one row written
        assert _snapshot(db) == before
        assert stats.items == len(before["items"]) and stats.tags == len(before["item_tags"])
    finally:
        db.close()


def _drop_search_rescue(raw):
    raw["topics"]["search-rescue"]["threshold"] = 1000


def test_a_taxonomy_change_rewrites_exactly_the_affected_items(tmp_path, config_path, config):
    changed_config = _config_with(config_path, tmp_path / "changed", _drop_search_rescue)
    db = _archive(config)
    try:
        retag_all(db, config)
        # an old stamp, so that a rewrite shows even within the same second
        db.execute("UPDATE items SET tagged_at = '2026-01-01T00:00:00Z'")
        before = _snapshot(db)
        retag_all(db, changed_config)
        after = _snapshot(db)
        rows = {r["id"]: r for r in
                db.query("SELECT id, title, summary, text, language FROM items")}
    finally:
        db.close()

    def tags(taxonomy, row):
        result = matcher_for(taxonomy).tag(row["title"], row["summary"], row["text"],
                                           row["language"])
        return result.relevant, sorted((t.kind, t.slug, t.score, json.dumps(t.evidence))
                                       for t in result.tags)

    affected = {i for i, row in rows.items()
                if tags(config.taxonomy, row) != tags(changed_config.taxonomy, row)}
    assert affected  # the change matters to some items ...
    assert len(affected) < len(rows)  # ... and not to all of them
    stamped = {r[0]: r[3] for r in before["items"]}
    restamped = {r[0] for r in after["items"] if r[3] != stamped[r[0]]}
    assert restamped == affected
    assert not any(t[2] == "search-rescue" for t in after["item_tags"])

    # the archive ends exactly where a fresh one retagged with the new taxonomy does
    fresh_config = _config_with(config_path, tmp_path / "fresh", _drop_search_rescue)
    fresh = _archive(fresh_config)
    try:
        retag_all(fresh, fresh_config)
        expected = _snapshot(fresh, without={"tagged_at"})
    finally:
        fresh.close()
    assert _snapshot_without_stamps(after) == expected


def _snapshot_without_stamps(snapshot):
    return dict(snapshot, items=[(r[0], r[1], r[2], r[4]) for r in snapshot["items"]])


def test_a_retag_in_worker_processes_ends_where_one_in_this_process_does(tmp_path, config_path):
    # A large archive is retagged by worker processes (monitor.parallel); the tables must end
    # exactly as a retag done here leaves them, fingerprints made in the workers included.
    changed_config = _config_with(config_path, tmp_path / "changed", _drop_search_rescue)
    results = []
    for processes in (1, 2):
        db = _archive(_config_with(config_path, tmp_path / f"archive-{processes}", lambda raw: None))
        try:
            db.execute("DELETE FROM cluster_fingerprints")  # the workers make them anew
            stats = retag_all(db, changed_config, batch=40, processes=processes)
            results.append((_snapshot(db, without={"tagged_at"}), stats.items, stats.tags))
        finally:
            db.close()
    assert results[0] == results[1]
    assert results[0][1] == len(_rows()) and results[0][2] > 0


def test_a_config_file_edited_during_a_retag_does_not_change_what_the_retag_writes(tmp_path,
                                                                                   config_path):
    # The workers read the config from its file; edited since the retag started, it is refused
    # there and the retag's own process tags every batch, with the config it was started with.
    results = []
    for processes in (1, 2):
        changed_config = _config_with(config_path, tmp_path / f"changed-{processes}",
                                      _drop_search_rescue)
        if processes == 2:
            changed_config.path.write_text(config_path.read_text(encoding="utf-8"), encoding="utf-8")
        db = _archive(_config_with(config_path, tmp_path / f"archive-{processes}", lambda raw: None))
        try:
            retag_all(db, changed_config, batch=40, processes=processes)
            results.append(_snapshot(db, without={"tagged_at"}))
        finally:
            db.close()
    assert results[0] == results[1]
    assert not any(t[2] == "search-rescue" for t in results[1]["item_tags"])
