"""Curation desk and member pages under 50 concurrent clients on loopback.

    .venv/bin/python bench/bench_desk.py [--clients 50] [--seconds 20] [--workers 1] [--think 0 ...]

Builds a throw-away archive with two weeks of stories from the real articles in ../shared/corpus
(tests.fixtures_digest.fill_week: 140 stories, clustered, tagged), drafts 2026-W48 and 2026-W49,
marks W48 as sent (for the archive), runs `monitor serve` in its own process, and drives every
desk and member page with httpx clients (signed in as a curator for the desk). Prints median, p95
and p99 per page, the desk page's size, and the ratio of the worst page p95 to the 150 ms target.
The load driver is bench_web.load (the analyst benchmark's), so both report alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_web import _report, free_port, load  # noqa: E402

from monitor import digest, subscribers  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.store import open_db  # noqa: E402
from monitor.web import auth  # noqa: E402
from tests.fixtures_digest import NOW, WINDOW_START, corpus_sources, fill_week  # noqa: E402
from tests.helpers import write_config  # noqa: E402

PASSWORD = "benchmark password 1"


def build(folder: Path, port: int):
    base = f"http://127.0.0.1:{port}"
    path = write_config(folder, sources=corpus_sources(), web={"base_url": base, "port": port},
                        digest={"base_url": base})
    config = load_config(path)
    db = open_db(config.storage.database)
    fill_week(db, config, stories=140, start=WINDOW_START - timedelta(days=7))
    old = digest.draft_issue(db, config, "2026-W48", now=NOW)
    db.execute("UPDATE digests SET send_at = '2099-01-01T09:00:00Z' WHERE id = ?", [old["id"]])
    digest.approve_issue(db, config, old["id"], "bench", now=NOW)
    digest.set_issue_state(db, old["id"], "sending")
    digest.set_issue_state(db, old["id"], "sent")
    digest.draft_issue(db, config, "2026-W49", now=NOW)
    auth.add_user(db, "cora", PASSWORD, "curator")
    sub = subscribers.add_subscriber(db, config, "member@example.org", consent={"how": "bench"})
    pending = subscribers.add_subscriber(db, config, "pending@example.org", status="pending",
                                         consent={"how": "bench"})
    links = {"confirm": subscribers.confirm_url(config, pending),
             "preferences": subscribers.preferences_url(config, sub),
             "unsubscribe": subscribers.unsubscribe_url(config, sub)}
    db.close()
    return path, {k: v[len(base):] for k, v in links.items()}


def page_mix(links: dict) -> list[tuple[str, str, str]]:
    desk = "/desk/2026-W49"
    return [("desk", "cora", desk), ("desk filtered", "cora", desk + "?region=balkan-route"),
            ("preview page", "cora", desk + "/preview"), ("email html", "cora", desk + "/email.html"),
            ("history", "cora", desk + "/history"), ("subscribe", "", "/subscribe"),
            ("confirm page", "", links["confirm"]), ("preferences", "", links["preferences"]),
            ("unsubscribe pg", "", links["unsubscribe"]), ("archive", "", "/archive"),
            ("archive atom", "", "/archive.atom"), ("web version", "", "/digest/2026-W48")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--think", type=float, action="append", default=None,
                        help="mean pause between a client's requests in s (repeatable; 0 = none)")
    args = parser.parse_args()
    import httpx

    # Signed links are made here and read by the server: both must use the same key.
    os.environ["MONITOR_SECRET_KEY"] = "bench-secret-" + "x" * 20
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        config_path, links = build(Path(tmp), port)
        print(f"archive with two weeks (140 stories) built in {time.perf_counter() - started:.1f} s")
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config_path),
                                 "serve", "--workers", str(args.workers)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/login", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            with httpx.Client(base_url=base) as client:
                token = re.search(r'name="csrf_token" value="([^"]+)"',
                                  client.get("/login").text).group(1)
                client.post("/login", data={"username": "cora", "password": PASSWORD,
                                            "csrf_token": token})
                cookies = {"": "", "cora": client.cookies["bnm_session"]}
                desk = client.get("/desk/2026-W49")
                print(f"desk page: {len(desk.content) / 1024:.0f} KiB of HTML "
                      f"(status {desk.status_code})")
            mix = page_mix(links)
            asyncio.run(load(base, cookies, mix, 5, 3))  # warm-up (template and render caches)
            for think in tuple(args.think) if args.think else (0.0, 1.0):
                result = asyncio.run(load(base, cookies, mix, args.clients, args.seconds, think))
                _report(result, args.clients, args.seconds, args.workers, think)
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
