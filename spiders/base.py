"""Shared behaviour of our spiders: one source each, conditional GET, article pages, feed fallback.

A subclass only turns the listing response (feed, page, sitemap) into entries
`{"link", "title", "summary", "published", "author", "guid", "image"}`.
"""

from __future__ import annotations

import scrapy

from monitor.config import Source
from monitor.crawl.describe import describe_failure, describe_status
from monitor.crawl.session import CrawlSession
from monitor.errors import ParseError
from monitor.store import now_iso
from monitor.urls import trusted_canonical


class SourceSpider(scrapy.Spider):
    kind = "base"

    def __init__(self, source: Source, session: CrawlSession, **kwargs):
        super().__init__(name=source.name, **kwargs)
        self.source = source
        self.session = session
        self.outcome = session.outcome(source)

    # -- listing -----------------------------------------------------------------------------

    async def start(self):
        for request in self.start_requests_for(self.source.url):
            yield request

    def start_requests_for(self, url: str):
        headers = {}
        validators = self.session.validators(url)
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        yield scrapy.Request(url, headers=headers, callback=self.parse_listing,
                             errback=self.listing_failed, dont_filter=True,
                             meta={"handle_httpstatus_list": [304], "listing_url": url})

    async def parse_listing(self, response):
        if response.status == 304:
            self.outcome.unchanged = True
            return
        try:
            entries = await self.entries_from(response)
        except ParseError as exc:
            self._listing_error(response.url, exc.message)
            return
        # Validators are committed only when the whole source finished (session.finish_source):
        # after a crash or kill the feed is read again and its unsaved entries are completed.
        self.outcome.validators[response.meta["listing_url"]] = (
            _header(response, b"ETag"), _header(response, b"Last-Modified"))
        for entry in entries:
            for output in self.follow_entry(entry):
                yield output

    def listing_failed(self, failure):
        url = failure.request.url if getattr(failure, "request", None) else self.source.url
        sentence = describe_failure(failure, url, self.settings.getfloat("DOWNLOAD_TIMEOUT"),
                                    self.settings.getint("DOWNLOAD_MAXSIZE"))
        self._listing_error(url, sentence)

    def _listing_error(self, url: str, sentence: str) -> None:
        if self.outcome.error is None:
            self.outcome.error = sentence
        self.session.log_error(self.source, url, sentence)

    def warn(self, url: str, sentence: str) -> None:
        self.outcome.warnings.append(sentence)
        self.session.log_error(self.source, url, sentence)

    async def entries_from(self, response) -> list[dict]:
        raise NotImplementedError

    # -- items -------------------------------------------------------------------------------

    def follow_entry(self, entry: dict):
        keys = self.session.keys_for(entry["link"])
        if not keys:
            return
        if not self.session.claim(keys):
            self.outcome.seen += 1
            self.session.record_seen_elsewhere(self.source, keys)
            return
        if not self.source.full_text:
            yield self.item_from(entry, None, keys)
            return
        yield self.article_request(entry["link"], entry, keys)

    def article_request(self, url: str, entry: dict, keys: list[str]) -> scrapy.Request:
        # "article": the request takes a place in the crawl's extraction gate (crawl/gate.py).
        self.session.pool.start_extraction()
        return scrapy.Request(url, callback=self.parse_article, errback=self.article_failed,
                              cb_kwargs={"entry": entry, "keys": keys}, dont_filter=True,
                              meta={"article": True})

    async def parse_article(self, response, entry: dict, keys: list[str]):
        try:
            if response.status != 200:
                article, sentence = None, describe_status(response.status)
            else:
                article, sentence = await self._extract(response)
        finally:
            self.session.gate.leave(response.request, self.name)
        if article is None:
            for item in self._page_error(entry, keys, response.url, sentence):
                yield item
            return
        article["canonical"] = trusted_canonical(article.get("canonical"), response.url)
        keys = keys + self.session.keys_for(response.url, article.get("canonical"))
        yield self.item_from(entry, article, keys, response.url)

    async def _extract(self, response) -> tuple[dict | None, str | None]:
        try:
            return await self.session.pool.extract(response.body, response.url), None
        except ParseError as exc:
            return None, exc.message

    def article_failed(self, failure):
        request = failure.request
        self.session.gate.leave(request, self.name)
        entry, keys = request.cb_kwargs["entry"], request.cb_kwargs["keys"]
        sentence = describe_failure(failure, request.url, self.settings.getfloat("DOWNLOAD_TIMEOUT"),
                                    self.settings.getint("DOWNLOAD_MAXSIZE"))
        return self._page_error(entry, keys, request.url, sentence)

    def _page_error(self, entry: dict, keys: list[str], url: str, sentence: str) -> list[dict]:
        """The page could not be used: the item is still stored, from its feed entry."""
        self.outcome.page_errors += 1
        self.session.log_error(self.source, url, f"Article page: {sentence}")
        item = self.item_from(entry, None, keys)
        item["extract_error"] = sentence
        return [item]

    def item_from(self, entry: dict, article: dict | None, keys: list[str],
                  final_url: str | None = None) -> dict:
        article = article or {}
        url = article.get("canonical") or final_url or entry["link"]
        return {
            "url": url,
            "url_keys": list(dict.fromkeys(keys)),
            "source": self.source.name,
            "title": entry.get("title") or article.get("title") or "",
            "summary": entry.get("summary") or article.get("description") or "",
            "text": article.get("text") or "",
            "declared_language": article.get("declared_language") or entry.get("language")
            or self.source.language,
            "language": None,
            "published": entry.get("published") or article.get("published"),
            "fetched_at": now_iso(),
            "author": entry.get("author") or article.get("author"),
            "image": entry.get("image") or article.get("image"),
            "feed_url": entry["link"],
            "guid": entry.get("guid"),
            "full_text": bool(article.get("text")),
            "extract_error": None,
            "content_hash": article.get("content_hash"),
        }

    def closed(self, reason):
        self.session.gate.release_all(self.name)
        if reason not in ("finished", "shutdown") and self.outcome.error is None:
            if reason == "closespider_timeout":
                self.outcome.error = "The crawl of this source took too long and was stopped."
            else:
                self.outcome.error = f"The crawl stopped early ({reason})."
        self.session.finish_source(self.source)


def _header(response, name: bytes) -> str | None:
    value = response.headers.get(name)
    if not value:
        return None
    return value.decode("latin-1")[:500]
