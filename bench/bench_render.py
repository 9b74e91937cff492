"""Rendering speed of one 60-story issue (cold: Jinja2 + MJML compile) and of personalised messages
from the cache. Prints medians; target: one 60-story issue <= 200 ms.

    .venv/bin/python bench/bench_render.py [--runs 30] [--messages 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import digest, render  # noqa: E402
from monitor.store import open_db  # noqa: E402
from tests.fixtures_digest import NOW, WEEK, fill_week, write_digest_config  # noqa: E402

TARGET_MS = 200.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sections = [{"slug": f"s{i}", "title": title, "regions": [region], "max": 20}
                    for i, (title, region) in enumerate([("Mediterranean", "central-med"),
                                                         ("Balkan route", "balkan-route"),
                                                         ("EU eastern borders", "eastern-border"),
                                                         ("EU policy", "eu")])]
        config = write_digest_config(Path(tmp), sections=sections)
        db = open_db(config.storage.database)
        fill_week(db, config, stories=60, tags=[("central-med", "arrivals"), ("balkan-route", "pushbacks"),
                                                 ("belarus-border", "pushbacks"), ("eu", "asylum-policy")])
        issue_id = digest.draft_issue(db, config, WEEK, now=NOW)["id"]
        stories = digest.issue_view(db, config, issue_id)["story_count"]

        cold = []
        for _ in range(args.runs):
            render.clear_cache()
            start = time.perf_counter()
            message = render.render_issue(config, db, issue_id)
            cold.append((time.perf_counter() - start) * 1000)
        size = len(message.html.encode("utf-8"))

        render.clear_cache()
        # Every combination of the regions: 8 distinct section sets (EU policy is always in).
        regions = ["central-med", "balkan-route", "eastern-border"]
        profiles = [{"regions": [r for i, r in enumerate(regions) if mask >> i & 1], "topics": []}
                    for mask in range(2 ** len(regions))]
        sets = len({render.sections_for(config, p) for p in profiles})
        start = time.perf_counter()
        for n in range(args.messages):
            render.render_issue(config, db, issue_id, profiles[n % len(profiles)],
                                unsubscribe_url=f"https://digest.example.org/u/{n}?t=abc&x=1",
                                preferences_url=f"https://digest.example.org/p/{n}")
        personalised = time.perf_counter() - start
        web = []
        for _ in range(args.runs):
            start = time.perf_counter()
            render.render_web(config, db, issue_id)
            web.append((time.perf_counter() - start) * 1000)
        db.close()

    median = statistics.median(cold)
    print(f"stories in issue:            {stories}")
    print(f"HTML size:                   {size / 1000:.1f} KB (limit 102 KB)")
    print(f"render one issue (cold):     median {median:.1f} ms, min {min(cold):.1f}, max {max(cold):.1f} "
          f"over {args.runs} runs; target <= {TARGET_MS:.0f} ms, ratio {median / TARGET_MS:.2f}")
    print(f"web version:                 median {statistics.median(web):.1f} ms")
    print(f"personalised from cache:     {args.messages} messages in {personalised:.2f} s = "
          f"{args.messages / personalised:,.0f} msg/s ({sets} section sets, compiled once each)")


if __name__ == "__main__":
    main()
