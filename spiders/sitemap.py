"""News sitemaps (Google News format), including one level of sitemap index."""

from __future__ import annotations

import scrapy

from spiders.base import SourceSpider

MAX_CHILD_SITEMAPS = 20


class NewsSitemapSpider(SourceSpider):
    kind = "sitemap"

    async def entries_from(self, response) -> list[dict]:
        result = await self.session.pool.parse_sitemap(
            response.body, response.url, self.session.config.crawl.max_items_per_source)
        for warning in result.warnings:
            self.warn(response.url, warning)
        self._children = result.children[:MAX_CHILD_SITEMAPS]
        return result.entries

    async def parse_listing(self, response):
        async for output in super().parse_listing(response):
            yield output
        if response.meta.get("child"):
            return
        for child in getattr(self, "_children", []):
            yield scrapy.Request(child, callback=self.parse_listing, errback=self.listing_failed,
                                 dont_filter=True,
                                 meta={"handle_httpstatus_list": [304], "listing_url": child,
                                       "child": True})
