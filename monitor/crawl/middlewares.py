"""Downloader middlewares of our own (the address guard is in guard.py)."""

from __future__ import annotations

import asyncio


class BackoffMiddleware:
    """Waits before a retry: 1 s, 2 s, 4 s … (Scrapy's RetryMiddleware retries immediately)."""

    def __init__(self, base: float = 1.0, cap: float = 30.0):
        self.base = base
        self.cap = cap

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getfloat("MONITOR_RETRY_BACKOFF", 1.0))

    async def process_request(self, request, spider=None):
        retries = request.meta.get("retry_times", 0)
        if retries and self.base > 0:
            await asyncio.sleep(min(self.cap, self.base * 2 ** (retries - 1)))
        return None
