"""`monitor demo`, the README's first command, end to end on the bundled snapshot (loopback only)."""

from __future__ import annotations

import re
import sqlite3

from monitor.demo import run_demo


def test_the_demo_gathers_tags_clusters_and_drafts_a_digest(tmp_path, capsys):
    data = tmp_path / "demo-data"
    run_demo(data_dir=data)
    out = capsys.readouterr().out
    db = sqlite3.connect(data / "monitor.db")
    items, relevant = db.execute("SELECT count(*), sum(relevant) FROM items").fetchone()
    assert items >= 300 and relevant >= 100
    # Every source is the loopback snapshot (the items keep their articles' real addresses as data).
    sources = [row[0] for row in db.execute("SELECT url FROM sources")]
    assert sources and all(url.startswith("http://127.0.0.1:") for url in sources)
    assert db.execute("SELECT count(DISTINCT tag) FROM item_tags WHERE kind = 'region'").fetchone()[0] >= 8
    # Whatever the day and hour (the undated press pages count from their fetch time), the demo
    # drafts the issue being gathered now, not an issue that has already closed.
    drafted = re.search(r"digest (\d{4}-W\d\d): a draft with (\d+) stories", out)
    assert drafted, out
    assert int(drafted[2]) >= 30
    preview = (data / "digest-preview.html").read_text(encoding="utf-8")
    headline = db.execute("SELECT headline FROM digest_entries WHERE included = 1 LIMIT 1").fetchone()[0]
    assert "<html" in preview.lower() and headline.split()[0] in preview
    assert "1 source(s) failing" in out  # the snapshot's deliberately broken feed
