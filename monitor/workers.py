"""CPU work off the Scrapy reactor: feed parsing and article extraction in worker processes.

Processes, not threads: trafilatura in a thread pool has crashed lxml with a segfault here, and a
process can be killed when one pathological document exceeds its time limit (pebble replaces the
worker). Each worker also has an address-space limit, so a bomb costs a worker, not the crawl.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from pebble import ProcessPool
from pebble.common import ProcessExpired

from monitor.errors import ParseError

# Workers start from a fresh interpreter ("spawn"), not a fork of the crawl: a forked worker
# carries a copy of everything the crawl process has loaded (Scrapy, the tagging models, the
# pages in flight), which doubled the crawl's memory. A fresh worker imports only the parsers.
_CONTEXT = multiprocessing.get_context("spawn")
# A worker is replaced after this many tasks, which returns the memory lxml and trafilatura's
# caches accumulate; a replacement costs about a second of imports.
_TASKS_PER_WORKER = 500


def _limit_worker(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass
    # Pay the import cost once per worker, not on the first page.
    import feedparser  # noqa: F401
    import trafilatura  # noqa: F401


def _parse_feed_task(data: bytes, url: str, content_type: str | None, max_entries: int):
    from monitor.feeds import parse_feed

    return parse_feed(data, url, content_type, max_entries)


def _sitemap_task(data: bytes, url: str, max_entries: int):
    from monitor.sitemaps import parse_sitemap

    return parse_sitemap(data, url, max_entries)


def _extract_task(data: bytes, url: str):
    from monitor.extract import extract_article

    return extract_article(data, url)


class WorkerPool:
    """A small process pool with per-task time limits, awaited from asyncio code."""

    def __init__(self, workers: int = 2, timeout: float = 20.0, memory_mb: int = 1024):
        self.timeout = timeout
        self.workers = workers
        self.memory_mb = memory_mb
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(max_workers=self.workers, max_tasks=_TASKS_PER_WORKER,
                           initializer=_limit_worker, initargs=(self.memory_mb,),
                           context=_CONTEXT)

    def _schedule(self, fn, args: tuple):
        try:
            return self.pool.schedule(fn, args=args, timeout=self.timeout)
        except RuntimeError:
            # The pool broke (a worker died in a way pebble could not recover from): replace it.
            self.pool.stop()
            self.pool = self._new_pool()
            return self.pool.schedule(fn, args=args, timeout=self.timeout)

    async def _run(self, fn, args: tuple, url: str, what: str):
        future = self._schedule(fn, args)
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

    async def extract(self, data: bytes, url: str) -> dict:
        return await self._run(_extract_task, (data, url), url, "article page")

    def close(self) -> None:
        self.pool.stop()
        self.pool.join(timeout=10)
