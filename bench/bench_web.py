"""Web desk benchmark: faceted search on a 1,000,000-item archive, and every page under 50 clients.

    .venv/bin/python bench/bench_web.py [--items 1000000] [--seconds 20] [--clients 50] [--workers 1]

1. Builds (once, cached in bench/results/) an archive of synthetic items whose titles and texts are
   sentences of the real articles in ../shared/corpus, with sources, dates over two years, region
   and topic tags and story clusters; the FTS index is built in one pass (triggers off while bulk
   loading, then 'rebuild').
2. Library level: monitor.archive_queries.search() for a fixed set of analyst queries with filters,
   facet counts included; prints median and p95 per query and overall.
3. HTTP level: `monitor serve` (uvicorn, separate process) on loopback, 50 concurrent httpx clients
   signed in as an analyst (and one admin page), for a bounded time, over a mix of every page
   type; prints median / p95 / p99 per page and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import archive_queries as aq  # noqa: E402
from monitor.store import open_db  # noqa: E402
from tests.web_archive import REGIONS, TOPICS, corpus_documents  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LANGS_FALLBACK = "en"
SOURCES = [f"source-{i:02d}" for i in range(40)]
PASSWORD = "benchmark password 1"

QUERIES = [
    {"q": "government"},
    {"q": "police", "region": ["central-med"]},
    {"q": '"prime minister"'},
    {"q": "migra*", "sort": "date"},
    {"q": "election OR vote", "topic": ["asylum-policy"]},
    {"q": "court NOT football"},
    {"q": "border -wall", "language": ["de", "en"]},
    {"q": "children", "since": "2026-01-01", "until": "2026-06-30"},
    {"q": "refugee*", "region": ["lampedusa", "channel"], "topic": ["deaths-missing"]},
    {"q": "Hamburg", "source": ["source-03", "source-07"]},
    {"q": "the", "region": ["balkan-route"], "sort": "date"},
    {"q": "water", "since": "2025-12-01"},
    {"region": ["belarus-border"], "topic": ["pushbacks"]},
    {"language": ["fr"], "since": "2026-10-01"},
    {"q": "Mittelmeer OR Méditerranée OR Mediterranean"},
    {"q": "said", "region": ["eu"], "topic": ["returns"], "since": "2025-06-01", "sort": "date"},
]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def write_config(path: Path, db_path: Path, port: int) -> None:
    import tomli_w

    from tests.helpers import base_config

    raw = base_config()
    raw["storage"]["database"] = str(db_path)
    raw["web"]["port"] = port
    for kind in ("regions", "topics"):  # the taxonomy in config.toml may be mid-edit elsewhere
        for table in raw.get(kind, {}).values():
            if isinstance(table, dict):
                table.setdefault("terms", {"en": ["placeholder"]})
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")


def sentences() -> list[tuple[str, str]]:
    out = []
    for doc in corpus_documents():
        for part in re.split(r"(?<=[.!?])\s+|\n+", doc["text"]):
            part = " ".join(part.split())
            if 30 <= len(part) <= 400:
                out.append((part, doc["language"]))
        out.append((doc["title"], doc["language"]))
    return out


def build_archive(db_path: Path, count: int) -> float:
    started = time.perf_counter()
    if db_path.exists():
        db_path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    db = open_db(db_path)
    conn = db.conn
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'items'"
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("PRAGMA synchronous = OFF")
    pool = sentences()
    rng = random.Random(7)
    start = datetime(2024, 12, 1, tzinfo=UTC)
    span = int((datetime(2026, 12, 1, tzinfo=UTC) - start).total_seconds())
    region_weights = [1 / (i + 1) for i in range(len(REGIONS))]
    topic_weights = [1 / (i + 1) for i in range(len(TOPICS))]
    batch = 20000
    item_id = 0
    print(f"building {count:,} items from {len(pool):,} real sentences …", flush=True)
    while item_id < count:
        items, sources_rows, tags = [], [], []
        for _ in range(min(batch, count - item_id)):
            item_id += 1
            title, lang = pool[rng.randrange(len(pool))]
            summary = " ".join(pool[rng.randrange(len(pool))][0] for _ in range(2))
            text = " ".join(pool[rng.randrange(len(pool))][0] for _ in range(6))
            when = (start + timedelta(seconds=rng.randrange(span))).strftime("%Y-%m-%dT%H:%M:%SZ")
            source = SOURCES[min(int(rng.expovariate(0.12)), len(SOURCES) - 1)]
            relevant = 1 if rng.random() < 0.6 else 0
            cluster = item_id - rng.randrange(3) if item_id > 3 and rng.random() < 0.3 else item_id
            items.append(
                (
                    item_id,
                    f"https://news{item_id % 997}.example.org/a/{item_id}",
                    source,
                    title[:200],
                    summary,
                    text,
                    lang,
                    when,
                    when,
                    1,
                    relevant,
                    cluster,
                )
            )
            sources_rows.append((item_id, source, when))
            if relevant:
                ev = json.dumps(
                    [{"term": title.split()[0].lower(), "field": "title", "weight": 1.0}]
                )
                for region in set(rng.choices(REGIONS, region_weights, k=rng.choice((1, 1, 2)))):
                    tags.append((item_id, "region", region, 1.5, ev))
                for topic in set(rng.choices(TOPICS, topic_weights, k=rng.choice((1, 2)))):
                    tags.append((item_id, "topic", topic, 1.2, ev))
        conn.execute("BEGIN")
        conn.executemany(
            """INSERT INTO items (id, url, source, title, summary, text, language, published,
                                  fetched_at, full_text, relevant, cluster_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            items,
        )
        conn.executemany("INSERT INTO item_sources VALUES (?, ?, ?)", sources_rows)
        conn.executemany("INSERT INTO item_tags VALUES (?, ?, ?, ?, ?)", tags)
        conn.execute("COMMIT")
        if item_id % 200000 == 0:
            print(f"  {item_id:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    print("  building the full-text index …", flush=True)
    conn.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")
    conn.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
    for _, sql in triggers:
        conn.execute(sql)
    for name in SOURCES:
        conn.execute(
            "INSERT OR IGNORE INTO sources (name, url, kind, every_seconds, last_success) "
            "VALUES (?, ?, 'feed', 3600, ?)",
            [name, f"https://{name}.example.org/feed", "2026-12-01T10:00:00Z"],
        )
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - started


def bench_library(db_path: Path, rounds: int) -> dict:
    from monitor.archive_index import FacetIndex

    db = open_db(db_path, migrate=False)
    t0 = time.perf_counter()
    index = FacetIndex(db)
    print(
        f"\nin-memory facet index built in {time.perf_counter() - t0:.1f} s "
        f"({index.present.sum():,} items)"
    )
    per_query = []
    overall = []
    for query in QUERIES:
        params = aq.SearchParams.from_mapping(query)
        aq.search(db, params, index=index)  # warm the page cache
        times = []
        result = None
        for _ in range(rounds):
            t0 = time.perf_counter()
            result = aq.search(db, params, index=index)
            times.append((time.perf_counter() - t0) * 1000)
        overall.extend(times)
        per_query.append(
            (
                query,
                statistics.median(times),
                percentile(times, 95),
                result.total,
                result.total_capped,
                result.facet_window,
            )
        )
    db.close()
    print(f"\nLibrary: archive_queries.search() with facet counts, {rounds} runs per query (ms)")
    print(f"{'query':<78} {'median':>7} {'p95':>7} {'matches':>9}")
    for query, med, p95, total, capped, _window in per_query:
        label = json.dumps(query, ensure_ascii=False)[:78]
        shown = f">{total:,}" if capped else f"{total:,}"
        print(f"{label:<78} {med:7.1f} {p95:7.1f} {shown:>9}")
    summary = {
        "median_ms": statistics.median(overall),
        "p95_ms": percentile(overall, 95),
        "max_ms": max(overall),
    }
    print(
        f"{'ALL':<78} {summary['median_ms']:7.1f} {summary['p95_ms']:7.1f}   "
        f"(target p95 <= 100 ms; ratio {summary['p95_ms'] / 100:.2f})"
    )
    return summary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NewWords:
    """A search no one ran before (so nothing the server kept answers it): a word drawn from a
    random sentence of the corpus (common words as often as they occur), a random sort and page."""

    def __init__(self, seed: int = 11):
        words = []
        for text, _ in sentences():
            words.extend(w for w in re.findall(r"\w{4,}", text) if not w.isdigit())
        self.words = words
        self.rng = random.Random(seed)
        self.sent: set[str] = set()

    def __call__(self) -> str:
        from urllib.parse import urlencode

        while True:
            query = {
                "q": self.rng.choice(self.words),
                "sort": self.rng.choice(("relevance", "date")),
                "page": self.rng.choice((1, 1, 2, 3)),
            }
            path = "/search?" + urlencode(query)
            if path not in self.sent:
                self.sent.add(path)
                return path


def page_mix(item_ids: list[int]) -> list[tuple[str, str, str]]:
    """(kind, user, path) requests; every page type of the analyst and admin sides.

    A path may be a function returning one (a new search each time)."""
    from urllib.parse import urlencode

    mix = []
    new_words = NewWords()
    for query in QUERIES:
        mix.append(("search page", "ana", "/search?" + urlencode(query, doseq=True)))
        mix.append(("api search", "ana", "/api/search?" + urlencode(query, doseq=True)))
        mix.append(("search new words", "ana", new_words))
    for item_id in item_ids:
        mix.append(("item page", "ana", f"/items/{item_id}"))
        mix.append(("api item", "ana", f"/api/items/{item_id}"))
    mix += [
        ("chart", "ana", "/chart?by=region&since=2026-06-01&until=2026-11-30"),
        ("chart", "ana", "/chart?by=topic&since=2026-09-01&until=2026-11-30&region=channel"),
        ("source health", "root", "/admin/sources"),
        ("api sources", "ana", "/api/sources"),
        ("saved searches", "ana", "/saved"),
        ("start page", "ana", "/"),
        ("sign-in page", "", "/login"),
        ("openapi", "", "/api/openapi.json"),
    ]
    return mix


async def load(
    base: str,
    cookies: dict,
    mix,
    clients: int,
    seconds: float,
    think: float = 0.0,
    stagger: bool = True,
) -> dict:
    import httpx

    timings: dict[str, list[float]] = {}
    errors = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(3)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(n: int):
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            if think and stagger:  # people arrive one by one, not all in the same millisecond
                await asyncio.sleep(rng.uniform(0, think))
            while time.monotonic() < deadline:
                kind, user, path = mix[rng.randrange(len(mix))]
                path = path() if callable(path) else path
                headers = {"cookie": f"bnm_session={cookies[user]}"} if user else {}
                t0 = time.perf_counter()
                response = await client.get(path, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 200:
                    errors += 1
                timings.setdefault(kind, []).append(elapsed)
                if think:  # a person reading the page before the next click
                    await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))

    await asyncio.gather(*(client_loop(n) for n in range(clients)))
    return {"timings": timings, "errors": errors}


def bench_http(
    db_path: Path,
    clients: int,
    seconds: float,
    workers: int,
    thinks: tuple[float, ...] = (0.0,),
    profile: Path | None = None,
) -> list[dict]:
    import httpx

    from monitor.web import auth

    db = open_db(db_path, migrate=False)
    db.execute("DELETE FROM web_users")
    db.execute("DELETE FROM web_login_attempts")
    auth.add_user(db, "ana", PASSWORD, "analyst")
    auth.add_user(db, "root", PASSWORD, "admin")
    item_ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM items WHERE cluster_id IS NOT NULL ORDER BY random() LIMIT 40"
        )
    ]
    db.close()
    port = free_port()
    config_path = RESULTS / "bench-web.toml"
    write_config(config_path, db_path, port)
    env = {**os.environ, "MONITOR_SECRET_KEY": "bench-secret-" + "x" * 20}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(config_path),
            "serve",
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        cookies = {"": ""}
        for user in ("ana", "root"):
            with httpx.Client(base_url=base) as client:
                page = client.get("/login").text
                token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
                client.post(
                    "/login", data={"username": user, "password": PASSWORD, "csrf_token": token}
                )
                cookies[user] = client.cookies["bnm_session"]
        mix = page_mix(item_ids)
        t0 = time.perf_counter()
        while (
            "Search index: ready"
            not in httpx.get(
                base + "/admin/sources", cookies={"bnm_session": cookies["root"]}, timeout=60
            ).text
        ):
            time.sleep(1)  # the server builds its in-memory index in the background at start
        print(f"\nserver's in-memory index ready {time.perf_counter() - t0:.0f} s after sign-in")
        asyncio.run(load(base, cookies, mix, 5, 3))  # warm-up
        sequential(base, cookies, mix)
        import psutil

        server = psutil.Process(proc.pid)

        def server_cpu() -> float:
            procs = [server, *server.children(recursive=True)]
            return sum(p.cpu_times().user + p.cpu_times().system for p in procs)

        summaries = []
        for n_think, think in enumerate(thinks):
            spy = None
            if profile and n_think == 0:  # py-spy samples the server during the first run
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--subprocesses",
                        "--nonblocking",
                        "--rate",
                        "250",
                        "--duration",
                        str(int(seconds)),
                        "--format",
                        "raw" if profile.suffix == ".txt" else "flamegraph",
                        "--output",
                        str(profile),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu0 = server_cpu()
            result = asyncio.run(load(base, cookies, mix, clients, seconds, think))
            if spy is not None:
                spy.wait(30)
            cpu = server_cpu() - cpu0
            summaries.append(_report(result, clients, seconds, workers, think))
            n = sum(len(v) for v in result["timings"].values())
            print(
                f"server CPU: {cpu:.1f} s for {n} requests = {1000 * cpu / max(1, n):.1f} ms a "
                f"request (capacity ~{n / max(cpu, 1e-9):.0f} requests/s per free core); "
                f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
    finally:
        proc.terminate()
        proc.wait(20)
    return summaries


def sequential(base: str, cookies: dict, mix, rounds: int = 3) -> dict[str, float]:
    """Each request of the mix `rounds` times, one after another: what a page costs alone."""
    import httpx

    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _kind, user, path in mix:  # first visits (what the server keeps is filled here)
            path = path() if callable(path) else path
            client.get(path, headers={"cookie": f"bnm_session={cookies[user]}"} if user else {})
        for _ in range(rounds):
            for kind, user, path in mix:
                path = path() if callable(path) else path
                headers = {"cookie": f"bnm_session={cookies[user]}"} if user else {}
                t0 = time.perf_counter()
                client.get(path, headers=headers)
                timings.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    print(f"\nOne request at a time ({rounds} rounds of the mix; ms, median per page):")
    print("  " + ", ".join(f"{kind} {ms:.1f}" for kind, ms in sorted(medians.items())))
    return medians


def _report(result: dict, clients: int, seconds: float, workers: int, think: float) -> dict:
    timings = result["timings"]
    everything = [t for values in timings.values() for t in values]
    pacing = (
        f"each waiting {think:g} s on average between requests (first one after a random "
        f"0-{think:g} s: a steady state, not {clients} clients starting in the same instant)"
        if think
        else "back to back, no pause (saturation)"
    )
    print(
        f"\nHTTP: {clients} concurrent clients, {pacing}, for {seconds:.0f} s, `monitor serve "
        f"--workers {workers}` on loopback (ms, client-side; the clients share the 2 cores)"
    )
    print(
        "(a client model of 50 users each loading a page, then reading it for a few seconds, is "
        "what '50 concurrent clients' means for the web desk; back to back is a saturation test)"
        if think
        else "(saturation: the 2 cores are shared by the server and the 50 clients)"
    )
    print(
        "search page / api search: 16 fixed queries, answered from what the server kept after "
        "their first run; search new words: a query never run before (nothing kept)"
    )
    print(f"{'page':<16} {'requests':>9} {'median':>8} {'p95':>8} {'p99':>8}")
    for kind in sorted(timings):
        values = timings[kind]
        print(
            f"{kind:<16} {len(values):9d} {statistics.median(values):8.1f} "
            f"{percentile(values, 95):8.1f} {percentile(values, 99):8.1f}"
        )
    p95 = percentile(everything, 95)
    print(
        f"{'ALL':<16} {len(everything):9d} {statistics.median(everything):8.1f} {p95:8.1f} "
        f"{percentile(everything, 99):8.1f}   {len(everything) / seconds:.0f} req/s, "
        f"{result['errors']} non-200"
    )
    worst = max(percentile(v, 95) for v in timings.values())
    print(f"worst page p95 {worst:.1f} ms (target <= 150 ms; ratio {worst / 150:.2f})")
    return {
        "p95_ms": p95,
        "worst_page_p95_ms": worst,
        "requests": len(everything),
        "errors": result["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--think",
        type=float,
        action="append",
        default=None,
        help="mean pause between a client's requests in s (repeatable; 0 = none)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the server during the first load run into this file (.svg, or .txt: raw)",
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-library", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    db_path = RESULTS / f"web-{args.items}.db"
    if args.rebuild or not db_path.exists():
        took = build_archive(db_path, args.items)
        print(
            f"built {args.items:,} items in {took:.0f} s "
            f"({args.items / took:,.0f} items/s), {db_path.stat().st_size / 1e9:.2f} GB"
        )
    else:
        print(f"reusing {db_path} ({db_path.stat().st_size / 1e9:.2f} GB; --rebuild to rebuild)")
    if not args.skip_library:
        bench_library(db_path, args.rounds)
    if not args.skip_http:
        bench_http(
            db_path,
            args.clients,
            args.seconds,
            args.workers,
            tuple(args.think) if args.think else (0.0, 1.0),
            args.profile,
        )


if __name__ == "__main__":
    main()
