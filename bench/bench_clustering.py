"""Story clustering of 100,000 items: fingerprints (MinHash of shingles, lede stems) and linking,
from real corpus text repeated over a year under distinct ids. Run: .venv/bin/python bench/bench_clustering.py
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tagging import corpus_items  # noqa: E402

from monitor import clustering, parallel  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.tagging import matcher_for  # noqa: E402

N = 100_000


def main() -> None:
    config = load_config(ROOT / "config.toml")
    matcher = matcher_for(config.taxonomy)
    base = corpus_items()
    tagged = [matcher.tag(i["title"], i["summary"], i["text"], i["lang"]) for i in base]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    began, cpu0 = time.perf_counter(), time.process_time()
    specs = []
    for n in range(N):
        k = n % len(base)
        item, res = base[k], tagged[k]
        published = (start + timedelta(minutes=5 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        specs.append(dict(item_id=n + 1, title=item["title"], summary=item["summary"],
                          text=item["text"], published=published, relevant=res.relevant,
                          regions=res.slugs("region"), topics=res.slugs("topic")))
    processes = parallel.processes_for(N, None)
    docs = clustering.make_docs(specs, processes=processes)
    fingerprint_s = time.perf_counter() - began
    began = time.perf_counter()
    members = clustering.link_docs(docs, config.taxonomy.settings)
    link_s = time.perf_counter() - began
    clusters = {ids[0] for ids in members.values()}
    total = fingerprint_s + link_s
    cpu = time.process_time() - cpu0
    print(f"{N} items ({len(base)} real texts, one copy every 5 minutes over {N * 5 / 1440:.0f} days)")
    print(f"  fingerprints: {fingerprint_s:.1f}s ({N / fingerprint_s:,.0f} items/s, {processes} processes)")
    print(f"  linking:      {link_s:.1f}s ({N / link_s:,.0f} items/s)")
    # wall time: with worker processes this process's CPU time leaves theirs out
    print(f"  total:        {total:.1f}s wall ({cpu:.1f}s CPU in this process), {len(clusters)} "
          f"clusters; target < 60 s: {'met' if total < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
