"""A crawl-wide bound on article pages in flight: being downloaded, or downloaded and waiting for
an extraction worker.

Each source runs in its own Scrapy crawler, and each crawler has its own concurrency limits, so
twenty sources could hold twenty crawlers' worth of pages in memory while two workers extract
them one by one (900 MB for 2,000 pages). The gate is taken in a downloader middleware before an
article request is sent, so a page that cannot be extracted soon is not downloaded yet, and the
waiting request holds its crawler's downloader slot, which stops that crawler from starting more.

A taken place is identified by a token in `request.meta`; redirects and retries copy the meta,
so they keep the place rather than take a second one. Releasing is idempotent, and a spider that
closes gives back whatever its requests still held (a request cancelled at close never reaches
its callback or errback).
"""

from __future__ import annotations

import asyncio

TOKEN = "monitor_gate_token"


class ExtractionGate:
    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._semaphore: asyncio.Semaphore | None = None
        self._held: dict[str, set[object]] = {}

    @property
    def in_flight(self) -> int:
        return sum(len(tokens) for tokens in self._held.values())

    async def enter(self, request, owner: str) -> None:
        if request.meta.get(TOKEN) is not None:
            return
        if self._semaphore is None:  # created on the running loop
            self._semaphore = asyncio.Semaphore(self.limit)
        await self._semaphore.acquire()
        token = object()
        request.meta[TOKEN] = token
        self._held.setdefault(owner, set()).add(token)

    def leave(self, request, owner: str) -> None:
        token = request.meta.get(TOKEN) if request is not None else None
        if token is None:
            return
        held = self._held.get(owner, set())
        if token in held:
            held.discard(token)
            self._semaphore.release()

    def release_all(self, owner: str) -> None:
        for _ in self._held.pop(owner, set()):
            self._semaphore.release()


class ExtractionGateMiddleware:
    """Downloader middleware: an article request waits here for a place in the gate."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request, spider=None):
        spider = spider or self.crawler.spider
        if request.meta.get("article"):
            await spider.session.gate.enter(request, spider.name)
        return None
