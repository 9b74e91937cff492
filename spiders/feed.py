"""RSS, Atom and RDF feeds: the bytes Scrapy downloaded are parsed by feedparser in a worker."""

from __future__ import annotations

from spiders.base import SourceSpider


class FeedSpider(SourceSpider):
    kind = "feed"

    async def entries_from(self, response) -> list[dict]:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
        result = await self.session.pool.parse_feed(
            response.body, response.url, content_type,
            self.session.config.crawl.max_items_per_source)
        for warning in result.warnings:
            self.warn(response.url, warning)
        for entry in result.entries:
            entry.setdefault("language", result.language)
        return result.entries
