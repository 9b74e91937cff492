"""Sites without feeds: a listing page whose article links are found with a CSS selector."""

from __future__ import annotations

from scrapy.http import TextResponse

from monitor.errors import ParseError
from monitor.feeds import html_to_text
from monitor.urls import safe_url
from spiders.base import SourceSpider

MAX_LINKS = 200


class ListingSpider(SourceSpider):
    kind = "page"

    async def entries_from(self, response) -> list[dict]:
        if not isinstance(response, TextResponse):
            raise ParseError(response.url, "The listing page is not a web page (no text content).")
        try:
            elements = response.css(self.source.link_selector)
        except Exception as exc:  # cssselect raises its own error types for a bad selector
            raise ParseError(response.url, f"The link selector {self.source.link_selector!r} is not "
                                           f"valid CSS ({exc}).") from None
        entries, seen = [], set()
        for element in elements:
            href = element.attrib.get("href")
            if href is None:
                href = element.css("a::attr(href)").get()
            link = safe_url(href, response.url)
            if not link or link in seen:
                continue
            seen.add(link)
            title = html_to_text(" ".join(element.css("::text").getall()), 1000)
            entries.append({"link": link, "title": title, "summary": "", "published": None,
                            "author": None, "guid": None, "image": None})
            if len(entries) >= MAX_LINKS:
                break
        if not entries:
            self.warn(response.url, f"No article links matched the selector "
                                    f"{self.source.link_selector!r} on the listing page.")
        return entries
