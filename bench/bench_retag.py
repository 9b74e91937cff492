"""`monitor retag` over 100,000 stored items: real corpus text repeated under distinct URLs,
inserted with monitor.store.save_items, then re-tagged and re-clustered; also the ingest path
(process_items on batches of 100). Run: .venv/bin/python bench/bench_retag.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tagging import corpus_items  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.store import open_db, save_items  # noqa: E402
from monitor.tagging import process_items, retag_all  # noqa: E402
from tests.helpers import base_config, write_config  # noqa: E402


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(write_config(Path(tmp)))
        db = open_db(config.storage.database)
        base = corpus_items()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        began = time.perf_counter()
        for chunk in range(0, n, 2000):
            items = []
            for k in range(chunk, min(n, chunk + 2000)):
                item = base[k % len(base)]
                stamp = (start + timedelta(minutes=5 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")
                items.append({"url": f"https://archive.example/{k}", "url_keys": [f"archive.example/{k}"],
                              "source": "bench", "title": item["title"], "summary": item["summary"],
                              "text": item["text"], "declared_language": item["lang"],
                              "published": stamp, "fetched_at": stamp, "full_text": 1})
            save_items(db, items)
        print(f"{n} items stored with save_items in {time.perf_counter() - began:.1f}s")

        ids = [r[0] for r in db.execute("SELECT id FROM items ORDER BY id LIMIT 5000")]
        began = time.perf_counter()
        for s in range(0, len(ids), 100):
            process_items(db, config, ids[s:s + 100])
        ingest = time.perf_counter() - began
        print(f"ingest path: process_items on {len(ids)} items in batches of 100: "
              f"{len(ids) / ingest:,.0f} items/s (language detection included)")

        began = time.perf_counter()
        stats = retag_all(db, config)
        first = time.perf_counter() - began
        print(f"retag (first, detects language of {n - len(ids)} untagged items): {first:.1f}s — {stats}")
        # a real taxonomy change: the sea-rescue topic made unreachable, so every item that had
        # it is rewritten (tags, tagged_at) and the story concepts of those items change
        rescue = dict(base_config()["topics"]["search-rescue"], threshold=1000)
        changed = load_config(write_config(Path(tmp) / "changed", topics={"search-rescue": rescue}))
        for label, cfg in (("after a taxonomy change", changed), ("with the same taxonomy again", changed)):
            tags_before = db.execute("SELECT count(*) FROM item_tags").fetchone()[0]
            began, cpu = time.perf_counter(), time.process_time()
            stats = retag_all(db, cfg)
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
            # wall time: retag_all tags in worker processes, whose CPU time this process's leaves out
            print(f"retag ({label}, languages known): {seconds:.1f}s wall ({cpu:.1f}s CPU in this "
                  f"process), item_tags {tags_before} -> {stats.tags}; "
                  f"target < 60 s: {'met' if seconds < 60 else 'NOT met'}")
        db.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
