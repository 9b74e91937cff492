"""`monitor run`: the long-lived scheduler (APScheduler 3.x).

The database decides which sources are due (pure function `due_sources`), so a restart picks up
where it stopped instead of re-crawling everything at once. Each crawl runs in its own child
process with a time and memory limit, at most `parallel` at a time, so a source that hangs,
crashes or leaks cannot stop the others. Weekly digest and saved-search jobs run on the same clock.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from monitor import store
from monitor.config import Config, Source

log = logging.getLogger("monitor.scheduler")

TICK_SECONDS = 30
MAX_BACKOFF = timedelta(hours=24)


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def next_due(source: Source, last_attempt: str | None, consecutive_failures: int) -> datetime | None:
    """When the source should next be crawled; None = now. Failing sources back off exponentially."""
    last = _parse(last_attempt)
    if last is None:
        return None
    interval = timedelta(seconds=source.every)
    if consecutive_failures:
        interval = min(max(interval, interval * 2 ** min(consecutive_failures - 1, 10)),
                       max(MAX_BACKOFF, interval))
    return last + interval


def due_sources(sources: Iterable[Source], health: dict[str, dict], now: datetime,
                running: set[str] = frozenset()) -> list[Source]:
    """Pure: the enabled sources due at `now`, longest-overdue first."""
    due = []
    for source in sources:
        if not source.enabled or source.name in running:
            continue
        row = health.get(source.name, {})
        when = next_due(source, row.get("last_attempt"), row.get("consecutive_failures") or 0)
        if when is None or when <= now:
            due.append((when or datetime.min.replace(tzinfo=UTC), source))
    due.sort(key=lambda pair: pair[0])
    return [source for _, source in due]


class CrawlScheduler:
    def __init__(self, config: Config, parallel: int = 2):
        self.config = config
        self.parallel = parallel
        self.pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="crawl")
        self.running: set[str] = set()
        self.lock = threading.Lock()
        db = store.open_db(config.storage.database)
        store.sync_sources(db, config.sources)
        db.close()

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        db = store.open_db(self.config.storage.database)
        try:
            health = {row["name"]: row for row in store.source_health(db)}
            with self.lock:
                due = due_sources(self.config.sources, health, now, self.running)
                free = self.parallel * 2 - len(self.running)  # keep the queue short
                started = []
                for source in due[:max(free, 0)]:
                    # Recorded before the crawl starts: after a crash or restart this source is
                    # not due again until its interval has passed (no burst of duplicate work).
                    store.mark_attempt(db, source.name, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
                    self.running.add(source.name)
                    self.pool.submit(self._crawl, source)
                    started.append(source.name)
        finally:
            db.close()
        return started

    def _crawl(self, source: Source) -> None:
        from monitor.crawl.runner import crawl_in_subprocess

        try:
            result = crawl_in_subprocess(self.config, source)
            line = result.stdout.strip().splitlines()
            log.info("%s", line[0] if line else f"{source.name}: exit {result.returncode}")
        except Exception:  # keep the scheduler alive whatever one crawl does
            log.exception("crawl of %s failed to start", source.name)
        finally:
            with self.lock:
                self.running.discard(source.name)

    def wait_idle(self) -> None:
        self.pool.shutdown(wait=True)


def run_periodic_jobs(config: Config, now: datetime | None = None) -> None:
    """Weekly digest (draft, send at its time) and saved-search e-mails."""
    now = now or datetime.now(UTC)
    db = store.open_db(config.storage.database)
    try:
        for module_name, function in (("monitor.digest", "run_due_jobs"),
                                      ("monitor.saved_searches", "run_due")):
            try:
                module = __import__(module_name, fromlist=[function])
            except ModuleNotFoundError:
                continue
            job = getattr(module, function, None)
            if job is None:
                continue
            try:
                job(db, config, now)
            except Exception:
                log.exception("%s.%s failed", module_name, function)
    finally:
        db.close()


def run_scheduler(config: Config, once: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    crawls = CrawlScheduler(config)
    if once:
        crawls.tick()
        crawls.wait_idle()
        run_periodic_jobs(config)
        return

    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(crawls.tick, "interval", seconds=TICK_SECONDS, next_run_time=datetime.now(UTC),
                      max_instances=1, coalesce=True, id="crawl-tick")
    scheduler.add_job(run_periodic_jobs, "interval", minutes=5, args=[config],
                      next_run_time=datetime.now(UTC) + timedelta(seconds=5), max_instances=1,
                      coalesce=True, id="periodic-jobs")

    def stop(signum, frame):
        log.info("stopping (signal %s); crawls in progress finish first", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: %d sources, checking every %d s", len(config.sources), TICK_SECONDS)
    scheduler.start()
    crawls.wait_idle()
