"""Runs crawls: in this process (`monitor crawl`), or in a child process with time and memory limits.

Scrapy's reactor can run once per process, so everything long-lived (the scheduler, the web desk,
adding one URL to a digest) crawls through a child process: that also bounds what a hanging or
leaking source can cost. The choice is hidden behind run_sources / crawl_in_subprocess / fetch_one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor import store
from monitor.config import Config, Source
from monitor.crawl.session import CrawlSession, SourceOutcome
from monitor.errors import FetchError, MonitorError

log = logging.getLogger(__name__)

__all__ = ["SourceOutcome", "run_sources", "crawl_in_subprocess", "fetch_one", "ChildResult"]


def select_sources(config: Config, names: Sequence[str] = ()) -> list[Source]:
    if not names:
        return [s for s in config.sources if s.enabled]
    known = {s.name: s for s in config.sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MonitorError(f"Unknown source(s): {', '.join(unknown)}. "
                           f"Run `monitor sources` to list the configured ones.")
    return [known[n] for n in names]


def run_sources(config: Config, sources: Sequence[Source], progress=None,
                log_level: str = "ERROR") -> list[SourceOutcome]:
    """Crawl the given sources once, in this process; returns one outcome per source."""
    from monitor.workers import WorkerPool, load_worker_server

    pool = WorkerPool(config.crawl.extract_workers, config.crawl.parse_timeout,
                      config.crawl.source_memory_mb)
    load_worker_server()  # before Scrapy's imports, so the two load side by side

    try:
        from scrapy.crawler import CrawlerProcess

        from monitor.crawl.settings import scrapy_settings
        from spiders import SPIDERS

        db = store.open_db(config.storage.database)
        store.sync_sources(db, config.sources)
    except BaseException:
        pool.close()
        raise
    session = CrawlSession(config, db, pool, progress)
    settings = scrapy_settings(config.crawl, log_level)
    settings["CLOSESPIDER_TIMEOUT"] = config.crawl.source_time_limit
    settings["LOG_INSTALL_ROOT_HANDLER"] = True
    if log_level in ("CRITICAL", "NONE"):
        # Users read our one line per source; Scrapy's and Twisted's own log (which may include
        # tracebacks of internal races) goes to a file beside the archive, one per source set.
        logs = Path(config.storage.database).parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        name = sources[0].name if len(sources) == 1 else "crawl"
        settings.update({"LOG_ENABLED": True, "LOG_LEVEL": "WARNING", "LOG_FILE_APPEND": False,
                         "LOG_FILE": str(logs / f"{name}.log")})
    process = CrawlerProcess(settings)
    for source in sources:
        store.mark_attempt(db, source.name)
        session.outcome(source)
        process.crawl(SPIDERS[source.kind], source=source, session=session)
    try:
        process.start()
    finally:
        session.flush()
        pool.close()
    outcomes = [session.outcomes[s.name] for s in sources]
    db.close()
    return outcomes


@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    killed_for: str | None = None  # "time" or "memory"


def run_child(args: Sequence[str], time_limit: float, memory_mb: int,
              env: dict | None = None) -> ChildResult:
    """Run `python -m monitor ARGS` in its own process group; kill it past the limits."""
    import psutil

    command = [sys.executable, "-m", "monitor", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    deadline = time.monotonic() + time_limit
    killed_for = None
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    import threading

    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for reader in readers:
        reader.start()
    try:
        parent = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        parent = None
    while proc.poll() is None:
        if time.monotonic() > deadline:
            killed_for = "time"
        elif parent is not None:
            try:
                rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                if rss > memory_mb * 1024 * 1024:
                    killed_for = "memory"
            except psutil.Error:
                pass
        if killed_for:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            break
        time.sleep(0.2)
    for reader in readers:
        reader.join(timeout=5)
    return ChildResult(proc.returncode, "".join(out_chunks), "".join(err_chunks), killed_for)


def crawl_in_subprocess(config: Config, source: Source) -> ChildResult:
    """One source's crawl in a child process (used by `monitor run`); limits are recorded."""
    result = run_child(["--config", str(config.path), "crawl", "--quiet", "--source", source.name],
                       config.crawl.source_time_limit, config.crawl.source_memory_mb)
    if result.killed_for or result.returncode not in (0,):
        if result.killed_for == "time":
            sentence = (f"The crawl of this source was stopped after "
                        f"{config.crawl.source_time_limit:g} seconds.")
        elif result.killed_for == "memory":
            sentence = (f"The crawl of this source used more than {config.crawl.source_memory_mb} MB "
                        "of memory and was stopped.")
        else:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1][:300]
            sentence = f"The crawl of this source crashed (exit code {result.returncode}: {last})."
        db = store.open_db(config.storage.database)
        try:
            store.log_fetch_error(db, source.name, source.url, sentence)
            store.record_source_result(db, source.name, sentence, 0, 0)
        finally:
            db.close()
    return result


def fetch_one(config: Config, db, url: str, source_name: str = "manual") -> int:
    """Fetch and extract one article URL (through Scrapy, in a child process); returns its item id."""
    from monitor.urls import safe_url

    if not safe_url(url):
        raise FetchError(str(url)[:200], f"{str(url)[:200]!r} is not an http(s) address.")
    result = run_child(["--config", str(config.path), "fetch-url", "--source", source_name, url],
                       config.crawl.timeout * 4 + 30, config.crawl.source_memory_mb)
    if result.killed_for:
        raise FetchError(url, f"Fetching {url} took too long and was stopped.")
    for line in reversed(result.stdout.strip().splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if answer.get("item_id"):
            return int(answer["item_id"])
        raise FetchError(url, answer.get("error") or f"Fetching {url} failed.")
    message = (result.stderr.strip().splitlines() or [f"Fetching {url} failed."])[-1]
    raise FetchError(url, message.removeprefix("Error: "))
