"""Ingest speed, memory and extraction quality: a loopback site of real article pages, 20 feeds.

Measures side by side, per repetition (medians reported): the single-process extraction floor,
`monitor crawl` end-to-end to committed rows, the crawl's peak memory (process + children), and a
second crawl with nothing new (304 via ETag; and feeds without validators). Then extraction F1 on
the Scrapinghub AEB pages through the crawl versus trafilatura alone.

    .venv/bin/python bench/bench_ingest.py [--pages 2000] [--feeds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import calendar
import gzip
import json
import multiprocessing
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from email.utils import formatdate
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import feed_source, write_config  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"

ARTICLES = CORPUS / "articles"
AEB = ARTICLES / "scrapinghub-aeb"
RESULTS = ROOT / "bench" / "results" / "ingest.json"
# parse_timeout: the production default (config.toml), not the tests' 10 s.
CRAWL = {"delay": 0.0, "concurrency": 32, "concurrency_per_host": 16, "retries": 0,
         "extract_workers": 2, "timeout": "30s", "parse_timeout": "20s"}
TARGETS = {"ratio": 1.5, "peak_mb": 400, "second_share": 0.10, "f1": 0.93}

# Each copy must stay a distinct item: no canonical link, og:url, twitter:url or <base>.
_IDENTITY = [
    re.compile(rb"<link\b[^>]*\brel\s*=\s*[\"']?canonical\b[^>]*>", re.I),
    re.compile(rb"<meta\b[^>]*(?:property|name)\s*=\s*[\"']?(?:og|twitter):url\b[^>]*>", re.I),
    re.compile(rb"<base\b[^>]*>", re.I),
]


def strip_identity(html: bytes) -> bytes:
    for pattern in _IDENTITY:
        html = pattern.sub(b"", html)
    return html


def corpus_pages() -> list[tuple[str, bytes]]:
    files = sorted((AEB / "html").glob("*.html.gz"))
    files += sorted((ARTICLES / "trafilatura-eval" / "html").glob("*.gz"))
    files += sorted((ARTICLES / "fundus").glob("**/*.html.gz"))
    return [(str(f.relative_to(ARTICLES)), gzip.decompress(f.read_bytes())) for f in files]


def entry_text(article: dict) -> tuple[str, str]:
    """A feed entry's headline and lede for a page: its title, and its text's first 300 characters
    cut at a word."""
    text = " ".join(article["text"].split())
    lede = text if len(text) <= 300 else text[:300].rsplit(" ", 1)[0] + "…"
    return article["title"] or lede[:80], lede


# -- the loopback site, in its own process ----------------------------------------------------

def rss(entries: list[tuple[str, str, str]], title: str) -> bytes:
    """An RSS feed of (link, headline, lede) entries, an hour old and a minute apart."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
             f"<title>{title}</title><link>http://127.0.0.1/</link><description>bench</description>"]
    for n, (link, headline, lede) in enumerate(entries):
        date = formatdate(time.time() - 3600 - n * 60, usegmt=True)
        parts.append(f"<item><title>{escape(headline)}</title><link>{link}</link>"
                     f"<guid>{link}</guid><pubDate>{date}</pubDate>"
                     f"<description>{escape(lede)}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def serve(conn, pages: dict[str, bytes], feed_specs: dict[str, tuple[str, list]]) -> None:
    """Child process: the Site serving pages and feeds; answers ("hits"), ("reset"), ("etags", on).

    feed_specs: feed path -> (title, [(article path, headline, lede)]); links get the site's own
    port.
    """
    from tests.servers import Site

    site = Site().start()
    feeds = {path: rss([(site.url(link), headline, lede) for link, headline, lede in entries],
                       title)
             for path, (title, entries) in feed_specs.items()}

    def add_feeds(with_etag: bool) -> None:
        for path, body in feeds.items():
            site.add(path, body, etag=f'"{abs(hash(path))}"' if with_etag else None)

    for path, body in pages.items():
        site.add(path, body, content_type="text/html")
    add_feeds(True)
    conn.send(site.port)
    while True:
        command, *args = conn.recv()
        if command == "hits":
            counts = Counter(p.split("/", 2)[1] for p, _ in list(site.requests))
            conn.send(dict(counts))
        elif command == "reset":
            site.requests.clear()
            conn.send(True)
        elif command == "etags":
            add_feeds(args[0])
            conn.send(True)
        elif command == "stop":
            site.close()
            conn.send(True)
            return


class Server:
    def __init__(self, pages: dict[str, bytes], feeds: dict[str, tuple[str, list]]):
        import psutil

        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, pages, feeds), daemon=True)
        self.process.start()
        self.port = self.conn.recv()
        self.ps = psutil.Process(self.process.pid)

    def ask(self, *command):
        self.conn.send(command)
        return self.conn.recv()

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(5)


# -- measurements ---------------------------------------------------------------------------

def floor(distinct: list[tuple[str, bytes]], copies: list[int]) -> dict:
    """Single-process extraction rate over the benchmark's pages.

    Extraction is deterministic, so each distinct page is extracted once and its time counted as
    often as it appears among the served pages (wall and CPU time): the same work as a loop over
    all of them, in a fraction of the time on a shared machine.
    """
    import trafilatura

    from monitor.extract import extract_article

    total = sum(copies)
    figures = {}
    for name, fn in (("extract_article", lambda url, body: extract_article(body, url)),
                     ("trafilatura_extract", lambda url, body: trafilatura.extract(body))):
        wall = cpu = 0.0
        for (url, body), n in zip(distinct, copies, strict=True):
            w0, c0 = time.perf_counter(), time.process_time()
            fn(url, body)
            wall += (time.perf_counter() - w0) * n
            cpu += (time.process_time() - c0) * n
        figures[f"{name}_pps"] = total / wall
        figures[f"{name}_cpu_pps"] = total / cpu
    return figures


def two_core_scaling(distinct: list[tuple[str, bytes]], sample: int = 120) -> dict:
    """What this machine's two cores give to two extraction processes at once.

    The same pages through extract_article in one process, then in two forked processes side by
    side: the scaling (2 x one's time / both's time) is 2.0 on two free cores, less when the
    virtual cores share their host's. It bounds the crawl's ratio, whose target assumes 2.0.
    """
    from monitor.errors import ParseError
    from monitor.extract import extract_article

    pages = distinct[:sample]

    def loop() -> float:
        began = time.perf_counter()
        for url, body in pages:
            try:
                extract_article(body, url)
            except ParseError:
                pass
        return time.perf_counter() - began

    one = loop()
    began = time.perf_counter()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            loop()
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    both = time.perf_counter() - began
    return {"one_process_s": one, "two_processes_s": both, "scaling": 2 * one / both}


def combine_floors(before: dict, after: dict) -> dict:
    both = {k: 2 / (1 / before[k] + 1 / after[k]) for k in before}
    return {**both, "before": before, "after": after}


def crawl(config: Path, server: Server) -> dict:
    """`monitor crawl` as a child process: wall time, peak RSS of it and its children, CPU split."""
    import psutil

    server.ask("reset")
    server_cpu = server.cpu()
    started_at = time.time()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "crawl",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=config.parent)
    parent = psutil.Process(proc.pid)
    peak = peak_main = peak_worker = peak_pss = 0
    polls = 0
    cpu: dict[int, float] = {}
    threads: dict[int, float] = {}
    # This poller shares the two cores with the crawl, so it reads what is cheap often and what is
    # dear seldom: RSS and CPU times every 0.1 s; the process tree (a scan of all of /proc) every
    # 0.5 s; PSS (the kernel walks every page table) every second while the summed RSS is within 5 %
    # of its peak so far, where the PSS peak is, else every 3 s. Reading all of it every 0.1 s took
    # 6 % of a core, which the crawl lost (its own CPU time is in `poll_cpu_s`).
    poll_cpu = time.process_time()
    family: list = []
    last_pss = -1e9
    while proc.poll() is None:
        if polls % 5 == 0:
            try:
                family = [parent, *parent.children(recursive=True)]
            except psutil.Error:
                break
        rss = 0
        for p in family:
            try:
                with p.oneshot():
                    one = p.memory_info().rss
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
            except psutil.Error:
                continue
            rss += one
            if p.pid == proc.pid:
                peak_main = max(peak_main, one)
            else:
                peak_worker = max(peak_worker, one)
        now = time.perf_counter()
        if now - last_pss >= (1.0 if rss >= 0.95 * peak else 3.0):
            last_pss = now
            pss = 0
            for p in family:
                try:
                    pss += p.memory_full_info().pss
                except psutil.Error:
                    continue
            peak_pss = max(peak_pss, pss)
        polls += 1
        if polls % 5 == 0:
            try:
                # Pool threads end before the process does: keep each thread's last figure.
                threads.update({t.id: t.user_time + t.system_time for t in parent.threads()})
            except psutil.Error:
                pass
        peak = max(peak, rss)
        time.sleep(0.1)
    poll_cpu = time.process_time() - poll_cpu
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"monitor crawl failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    workers = sum(v for pid, v in cpu.items() if pid != proc.pid)
    main_thread = threads.get(proc.pid, 0.0)
    mb = 2 ** 20
    return {"seconds": seconds, "peak_mb": peak / mb, "peak_pss_mb": peak_pss / mb,
            "peak_main_mb": peak_main / mb, "peak_one_worker_mb": peak_worker / mb,
            "hits": server.ask("hits"),
            "server_cpu_share": (server.cpu() - server_cpu) / seconds,
            "crawl_main_cpu_s": cpu.get(proc.pid, 0.0), "reactor_thread_cpu_s": main_thread,
            "other_threads_cpu_s": sum(threads.values()) - main_thread,
            "workers_cpu_s": workers, "poll_cpu_s": poll_cpu, "started_at": started_at,
            "stdout_tail": out.decode().strip().splitlines()[-1:]}


def rows(database: Path) -> dict:
    with sqlite3.connect(database) as db:
        total, full, earliest, latest = db.execute(
            "SELECT count(*), sum(full_text), min(fetched_at), max(fetched_at) FROM items").fetchone()
        errors = dict(db.execute("SELECT error, count(*) FROM fetch_log GROUP BY error"))
    return {"items": total, "full_text": full or 0, "earliest_fetch": earliest, "latest_fetch": latest,
            "fetch_log": errors}


def _epoch(iso: str) -> float:
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


# -- extraction quality (Scrapinghub AEB metric) ---------------------------------------------

def shingles(text: str, n: int = 4) -> Counter:
    tokens = re.findall(r"\w+", text or "")
    return Counter(" ".join(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1))
                   if tokens[i:i + n])


def aeb_f1(truth: dict[str, str], predicted: dict[str, str]) -> dict:
    precisions, recalls = [], []
    for key, expected in truth.items():
        want, got = shingles(expected), shingles(predicted.get(key) or "")
        tp, fp, fn = (sum((want & got).values()), sum((got - want).values()),
                      sum((want - got).values()))
        if fp == fn == 0:
            p = r = 1.0
        elif tp == 0:
            p = r = 0.0
        else:
            p, r = tp / (tp + fp), tp / (tp + fn)
        precisions.append(p)
        recalls.append(r)
    p, r = statistics.mean(precisions), statistics.mean(recalls)
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r}


def quality(tmp: Path, server: Server) -> dict:
    import trafilatura

    truth = {k: v["articleBody"] for k, v in
             json.loads((AEB / "ground-truth.json").read_text(encoding="utf-8")).items()}
    base = f"http://127.0.0.1:{server.port}"
    config = write_config(tmp / "f1", [feed_source("aeb", base + "/aeb/feed.xml")], crawl=CRAWL)
    run = crawl(config, server)
    with sqlite3.connect(config.parent / "data" / "monitor.db") as db:
        stored = {link.rsplit("/", 1)[1].removesuffix(".html"): text
                  for link, text in db.execute("SELECT feed_url, text FROM items")}
    alone = {key: trafilatura.extract(gzip.decompress((AEB / "html" / f"{key}.html.gz").read_bytes()))
             for key in truth}
    return {"pages": len(truth), "stored_items": len(stored), "crawl_seconds": run["seconds"],
            "crawl": aeb_f1(truth, stored), "trafilatura_alone": aeb_f1(truth, alone)}


# -- main -------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "bench/bench_ingest.py", *sys.argv[1:]])

    from monitor.errors import ParseError
    from monitor.extract import extract_article

    unique = corpus_pages()
    usable = []
    for name, html in unique:  # keep the pages our extractor reads, so every row has full text
        body = strip_identity(html)
        try:
            article = extract_article(body, "http://127.0.0.1/x.html")
        except ParseError:
            continue
        usable.append((name, body, entry_text(article)))
    per_feed = args.pages // args.feeds
    pages = {f"/a/{n}.html": usable[n % len(usable)][1] for n in range(per_feed * args.feeds)}
    # Each entry carries its page's own headline and first sentences, as a real feed does (with
    # made-up ones, "Border report 17" / "Entry 17 of Bench feed 3.", the numbers they shared made
    # all 2,000 items one story). The copies of one page are then one story of near-duplicates.
    feeds = {f"/feeds/{f:02d}.xml": (f"Bench feed {f}",
                                     [(f"/a/{n}.html", *usable[n % len(usable)][2])
                                      for n in range(f * per_feed, (f + 1) * per_feed)])
             for f in range(args.feeds)}
    aeb_keys = [f.name.removesuffix(".html.gz") for f in sorted((AEB / "html").glob("*.html.gz"))]
    aeb_pages = {f"/aeb/{k}.html": gzip.decompress((AEB / "html" / f"{k}.html.gz").read_bytes())
                 for k in aeb_keys}
    feeds["/aeb/feed.xml"] = ("AEB", [(f"/aeb/{k}.html", f"AEB page {k[:8]}",
                                       f"Page {k[:8]} of the AEB set.") for k in aeb_keys])
    server = Server({**pages, **aeb_pages}, feeds)
    base = f"http://127.0.0.1:{server.port}"
    copies = [len(range(i, len(pages), len(usable))) for i in range(min(len(usable), len(pages)))]
    distinct = [(f"{base}/a/{i}.html", usable[i][1]) for i in range(len(copies))]
    print(f"{len(usable)} of {len(unique)} corpus pages extract; {len(pages)} pages in "
          f"{args.feeds} feeds on {base}; load {os.getloadavg()}", flush=True)

    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_name:
            tmp = Path(tmp_name)
            for r in range(args.runs):
                load = os.getloadavg()[0]
                floor_before = floor(distinct, copies)
                config = write_config(tmp / f"run{r}", [feed_source(f"feed-{f:02d}",
                                                                    f"{base}/feeds/{f:02d}.xml")
                                                        for f in range(args.feeds)], crawl=CRAWL)
                database = config.parent / "data" / "monitor.db"
                server.ask("etags", True)
                first = crawl(config, server)
                first_rows = rows(database)
                # When the first and the last item were stored, in seconds after the crawl started:
                # the start-up and wind-down time around the steady state.
                first["first_row_s"] = _epoch(first_rows["earliest_fetch"]) - first["started_at"]
                first["last_row_s"] = _epoch(first_rows["latest_fetch"]) - first["started_at"]
                # This machine's speed drifts by a third within minutes: the floor is measured just
                # before and just after the crawl, and their harmonic mean (pages over total time)
                # is the rate the crawl is compared with.
                fl = combine_floors(floor_before, floor(distinct, copies))
                scaling = two_core_scaling(distinct)
                again_304 = crawl(config, server)
                rows_304 = rows(database)
                server.ask("etags", False)
                again_200 = crawl(config, server)
                rows_200 = rows(database)
                run = {"load_1min": load, "floor": fl, "two_core_scaling": scaling,
                       "first": first, "first_rows": first_rows,
                       "second_304": again_304, "rows_after_304": rows_304,
                       "second_no_validators": again_200, "rows_after_no_validators": rows_200}
                runs.append(run)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.with_suffix(".partial.json").write_text(json.dumps(runs, indent=2))
                print(f"run {r + 1}: floor {fl['extract_article_pps']:.1f} p/s, crawl "
                      f"{first_rows['items'] / first['seconds']:.1f} items/s, peak "
                      f"{first['peak_mb']:.0f} MB, again {again_304['seconds']:.2f}s / "
                      f"{again_200['seconds']:.2f}s, two-core scaling {scaling['scaling']:.2f}, "
                      f"load {load:.2f}", flush=True)
            f1 = quality(tmp, server)
    finally:
        server.stop()

    def med(fn):
        return statistics.median(fn(run) for run in runs)

    floor_pps = med(lambda x: x["floor"]["extract_article_pps"])
    summary = {
        "command": command, "pages": len(pages), "feeds": args.feeds, "runs": args.runs,
        "unique_pages": len(usable), "cpu_count": os.cpu_count(),
        "load_1min": [run["load_1min"] for run in runs],
        "floor_extract_article_pps": floor_pps,
        "floor_trafilatura_extract_pps": med(lambda x: x["floor"]["trafilatura_extract_pps"]),
        "floor_extract_article_cpu_pps": med(lambda x: x["floor"]["extract_article_cpu_pps"]),
        "crawl_cpu_s_per_item": med(lambda x: (x["first"]["crawl_main_cpu_s"]
                                              + x["first"]["workers_cpu_s"]) / x["first_rows"]["items"]),
        "peak_pss_mb": med(lambda x: x["first"]["peak_pss_mb"]),
        "crawl_seconds": med(lambda x: x["first"]["seconds"]),
        "crawl_items_per_s": med(lambda x: x["first_rows"]["items"] / x["first"]["seconds"]),
        "peak_mb": med(lambda x: x["first"]["peak_mb"]),
        "second_304_seconds": med(lambda x: x["second_304"]["seconds"]),
        "second_no_validators_seconds": med(lambda x: x["second_no_validators"]["seconds"]),
        "f1": f1, "runs_detail": runs,
    }
    # each run's crawl against the floor measured beside it (before and after it), then the
    # median: a ratio of two medians would pair a crawl with another run's floor
    per_run = [x["first_rows"]["items"] / x["first"]["seconds"] / x["floor"]["extract_article_pps"]
               for x in runs]
    summary["ratio_per_run"] = per_run
    summary["ratio"] = statistics.median(per_run)
    summary["ratio_of_medians"] = summary["crawl_items_per_s"] / floor_pps
    summary["two_core_scaling"] = [x["two_core_scaling"]["scaling"] for x in runs]
    summary["second_304_share"] = summary["second_304_seconds"] / summary["crawl_seconds"]
    summary["second_no_validators_share"] = (summary["second_no_validators_seconds"]
                                             / summary["crawl_seconds"])
    checks = {
        "rows": all(x["first_rows"]["items"] == len(pages) == x["first_rows"]["full_text"]
                    for x in runs),
        "second_no_article_hits": all(x[k]["hits"].get("a", 0) == 0 for x in runs
                                      for k in ("second_304", "second_no_validators")),
        "second_no_new_rows": all(x["rows_after_304"] == x["first_rows"]
                                  == x["rows_after_no_validators"] for x in runs),
    }
    summary["checks"] = checks
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    report(summary)


def report(s: dict) -> None:
    first = [x["first"] for x in s["runs_detail"]]
    med = statistics.median
    lines = [
        ("extraction floor, extract_article (1 process)", f"{s['floor_extract_article_pps']:.1f} pages/s", ""),
        ("extraction floor, trafilatura.extract (1 process)", f"{s['floor_trafilatura_extract_pps']:.1f} pages/s", ""),
        ("end-to-end monitor crawl", f"{s['crawl_items_per_s']:.1f} items/s ({s['crawl_seconds']:.1f} s)", ""),
        ("ratio end-to-end / floor, median of runs", f"{s['ratio']:.2f} ("
         + ", ".join(f"{r:.2f}" for r in s["ratio_per_run"]) + ")", f">= {TARGETS['ratio']}"),
        ("ratio of the medians above", f"{s['ratio_of_medians']:.2f}", ""),
        ("two-core scaling of extraction alone (ceiling)", f"{med(s['two_core_scaling']):.2f} ("
         + ", ".join(f"{r:.2f}" for r in s["two_core_scaling"]) + ")", "2.0 on free cores"),
        # The target is judged on PSS: the workers are forked from one server and share its pages,
        # which a sum of RSS counts once per process.
        ("peak PSS, crawl + children (shared pages once)", f"{s['peak_pss_mb']:.0f} MB",
         f"<= {TARGETS['peak_mb']} MB"),
        ("peak RSS summed over crawl + children", f"{s['peak_mb']:.0f} MB", ""),
        ("peak RSS main / one worker", f"{med(f['peak_main_mb'] for f in first):.0f} / "
                                       f"{med(f['peak_one_worker_mb'] for f in first):.0f} MB", ""),
        ("floor CPU rate, extract_article", f"{s['floor_extract_article_cpu_pps']:.1f} pages/CPU-s", ""),
        ("crawl CPU per item (main + workers)", f"{s['crawl_cpu_s_per_item'] * 1000:.0f} ms", ""),
        ("second crawl, feeds 304", f"{s['second_304_seconds']:.2f} s ({s['second_304_share']:.1%})", "< 10%"),
        ("second crawl, no validators", f"{s['second_no_validators_seconds']:.2f} s "
                                        f"({s['second_no_validators_share']:.1%})", "< 10%"),
        ("AEB F1 stored by the crawl", f"{s['f1']['crawl']['f1']:.3f} (P {s['f1']['crawl']['precision']:.3f}"
                                       f", R {s['f1']['crawl']['recall']:.3f})", f">= {TARGETS['f1']}"),
        ("AEB F1 trafilatura.extract alone", f"{s['f1']['trafilatura_alone']['f1']:.3f} (P "
                                             f"{s['f1']['trafilatura_alone']['precision']:.3f}, R "
                                             f"{s['f1']['trafilatura_alone']['recall']:.3f})", "same"),
        ("first / last row stored, s after the crawl started",
         f"{med(f['first_row_s'] for f in first):.1f} / {med(f['last_row_s'] for f in first):.1f} "
         f"of {med(f['seconds'] for f in first):.1f}", ""),
        ("crawl CPU s: reactor thread / other threads / workers",
         f"{med(f['reactor_thread_cpu_s'] for f in first):.1f} / "
         f"{med(f['other_threads_cpu_s'] for f in first):.1f} / "
         f"{med(f['workers_cpu_s'] for f in first):.1f}", ""),
        ("server CPU share during the crawl", f"{med(f['server_cpu_share'] for f in first):.0%} of a core", ""),
        ("this poller's CPU share during the crawl",
         f"{med(f['poll_cpu_s'] / f['seconds'] for f in first):.1%} of a core", ""),
        ("load average (1 min) at each run", ", ".join(f"{v:.2f}" for v in s["load_1min"]), ""),
    ]
    width = max(len(a) for a, _, _ in lines)
    print()
    print(f"{s['pages']} pages, {s['feeds']} feeds, {s['unique_pages']} distinct corpus pages, "
          f"{s['cpu_count']} cores, medians of {s['runs']} runs")
    for name, value, target in lines:
        print(f"  {name:<{width}}  {value:<28} {target}")
    for name, ok in s["checks"].items():
        print(f"  check {name}: {'ok' if ok else 'FAILED'}")
    print(f"\ncommand: {s['command']}\nfigures: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
