"""CPU work off the Scrapy reactor: feed parsing and article extraction in worker processes.

Processes, not threads: trafilatura in a thread pool has crashed lxml with a segfault here, and a
process can be killed when one pathological document exceeds its time limit (pebble replaces the
worker). Each worker also has an address-space limit, so a bomb costs a worker, not the crawl.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import signal
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from pebble import ProcessPool
from pebble.common import ProcessExpired

from monitor.errors import ParseError

# Workers never fork the crawl process: a forked worker would carry a copy of everything the crawl
# has loaded (Scrapy, the tagging models, the pages in flight), which doubled the crawl's memory.
# They are forked from a fork server that has imported feedparser and trafilatura and loaded
# dateparser's locales once (monitor/warm_worker.py), which the crawl starts loading before its
# own imports (load_worker_server): a worker then starts in milliseconds, where one
# started from a fresh interpreter ("spawn") took a second of imports as the first feeds arrived.
# Feeds and sitemaps, and article pages, have a pool each, so that the feed workers can stop while
# the pages are extracted.
_SERVER = multiprocessing.get_context("forkserver")
_SERVER.set_forkserver_preload(["monitor.warm_worker"])
# A worker is replaced after this many tasks, which returns what lxml and trafilatura's caches
# accumulate: an extraction worker's private memory grows by about 25 MB over its first 100
# pages, then by a few MB per hundred. A replacement is forked from the warm server in
# milliseconds, but starts with cold caches (about 0.1 s of CPU over its first pages), and a
# per-second CPU timeline of a 2,000-page crawl showed both cores half idle for about half a
# second at each replacement: 500 pages is one replacement per worker in such a crawl.
_TASKS_PER_WORKER = {"parse": 500, "extract": 500}
# Feed and sitemap workers stop after this long with nothing to parse (a crawl reads its listings
# in its first seconds, then only extracts pages): what a big feed made them allocate is given
# back while the pages are extracted. A listing that arrives later forks them again.
_PARSE_IDLE_SECONDS = 3.0


def load_worker_server() -> None:
    """Start the workers' fork server loading now, while the crawl starts up (idempotent).

    Its imports and dateparser's locales take about 2 s of one core. The crawl's own start (its
    config, Scrapy, the first feeds) takes about as long on the other, after which the feeds
    arrive and wait for the server: loaded side by side, the first article is stored seconds
    sooner. `WorkerPool.close` (or `stop_worker_server`) stops it, used or not.
    """
    multiprocessing.forkserver.ensure_running()


def _limit_worker(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass


def _parse_feed_task(data: bytes, url: str, content_type: str | None, max_entries: int):
    from monitor.feeds import parse_feed

    return parse_feed(data, url, content_type, max_entries)


def _sitemap_task(data: bytes, url: str, max_entries: int):
    from monitor.sitemaps import parse_sitemap

    return parse_sitemap(data, url, max_entries)


def _ready_task() -> bool:
    return True


def _extract_task(data: bytes, url: str):
    from monitor.extract import extract_article

    return extract_article(data, url)


def _stop_pool(pool: ProcessPool) -> None:
    pool.stop()
    pool.join(timeout=10)


class WorkerPool:
    """A small process pool with per-task time limits, awaited from asyncio code."""

    def __init__(self, workers: int = 2, timeout: float = 20.0, memory_mb: int = 1024):
        self.timeout = timeout
        self.workers = workers
        self.memory_mb = memory_mb
        # pebble starts a pool's workers at its first task, so a pool nobody uses costs nothing.
        self.pools = {kind: self._new_pool(kind) for kind in _TASKS_PER_WORKER}
        self._started: dict[str, Future] = {}
        self._parsing = 0
        self._parse_idle_timer: asyncio.TimerHandle | None = None

    def _new_pool(self, kind: str) -> ProcessPool:
        return ProcessPool(max_workers=self.workers, max_tasks=_TASKS_PER_WORKER[kind],
                           initializer=_limit_worker, initargs=(self.memory_mb,),
                           context=_SERVER)

    def _schedule(self, kind: str, fn, args: tuple):
        try:
            return self.pools[kind].schedule(fn, args=args, timeout=self.timeout)
        except RuntimeError:
            # The pool broke (a worker died in a way pebble could not recover from): replace it.
            self.pools[kind].stop()
            self.pools[kind] = self._new_pool(kind)
            return self.pools[kind].schedule(fn, args=args, timeout=self.timeout)

    async def _run(self, fn, args: tuple, url: str, what: str, kind: str = "parse"):
        if kind == "parse":
            self._parsing += 1
            if self._parse_idle_timer is not None:
                self._parse_idle_timer.cancel()
                self._parse_idle_timer = None
        try:
            await self._ready(kind)
            return await self._wait(self._schedule(kind, fn, args), url, what)
        finally:
            if kind == "parse":
                self._parsing -= 1
                if not self._parsing:
                    self._parse_idle_timer = asyncio.get_running_loop().call_later(
                        _PARSE_IDLE_SECONDS, self._stop_idle_parsers)

    def _stop_idle_parsers(self) -> None:
        self._parse_idle_timer = None
        if self._parsing:
            return
        idle, self.pools["parse"] = self.pools["parse"], self._new_pool("parse")
        self._started.pop("parse", None)
        # Stopping joins pebble's threads: not on the event loop.
        threading.Thread(target=_stop_pool, args=(idle,), name="parse-workers-stop",
                         daemon=True).start()

    async def _wait(self, future, url: str, what: str):
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout:
            raise ParseError(url, f"Reading the {what} took longer than {self.timeout:g} seconds "
                                  "and was stopped.") from None
        except ProcessExpired:
            raise ParseError(url, f"Reading the {what} crashed its worker process (out of memory "
                                  "or a parser crash); it was skipped.") from None
        except MemoryError:
            raise ParseError(url, f"Reading the {what} needed more memory than allowed.") from None
        except BrokenProcessPool:
            raise ParseError(url, f"Reading the {what} failed in its worker process.") from None

    async def parse_feed(self, data: bytes, url: str, content_type: str | None, max_entries: int):
        return await self._run(_parse_feed_task, (data, url, content_type, max_entries), url, "feed")

    async def parse_sitemap(self, data: bytes, url: str, max_entries: int):
        return await self._run(_sitemap_task, (data, url, max_entries), url, "sitemap")

    def start_extraction(self) -> None:
        """Start the extraction workers in the background, once (see _start)."""
        self._start("extract")

    def _start(self, kind: str) -> Future:
        """Start a pool's workers in a thread, once: until the fork server has loaded (a few
        seconds, at the start of a crawl), pebble's first `schedule` would wait for it on the
        crawl's event loop, which then stopped fetching for those seconds."""
        started = self._started.get(kind)
        if started is None:
            started = self._started[kind] = Future()
            threading.Thread(target=self._start_workers, args=(kind, started),
                             name=f"{kind}-workers-start", daemon=True).start()
        return started

    def _start_workers(self, kind: str, started: Future) -> None:
        try:
            self.pools[kind].schedule(_ready_task).result(timeout=max(self.timeout, 120))
        except Exception:  # noqa: BLE001 - the first real task reports what is wrong
            pass
        finally:
            started.set_result(None)

    async def _ready(self, kind: str) -> None:
        started = self._start(kind)
        if not started.done():
            await asyncio.wrap_future(started)

    async def extract(self, data: bytes, url: str) -> dict:
        return await self._run(_extract_task, (data, url), url, "article page", "extract")

    def close(self) -> None:
        if self._parse_idle_timer is not None:
            self._parse_idle_timer.cancel()
        for pool in self.pools.values():
            _stop_pool(pool)
        stop_worker_server()


def stop_worker_server() -> None:
    """Stop the fork server once its workers are stopped.

    Left alone it exits when the crawl process does, but only once it has finished loading: a
    crawl that found nothing new would leave it working (seconds of CPU) after it had gone.
    multiprocessing has no public call for this; without the private one, the server still
    exits by itself.
    """
    server = multiprocessing.forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
        server._stop()  # reaps it and forgets it, so a later crawl in this process starts anew
    except (OSError, AttributeError):
        pass
