"""One article URL (a curator adds it to the digest by hand): fetch, extract, store."""

from __future__ import annotations

from spiders.base import SourceSpider


class ArticleSpider(SourceSpider):
    kind = "article"

    async def start(self):
        url = self.source.url
        keys = self.session.keys_for(url)
        entry = {"link": url, "title": "", "summary": "", "published": None, "author": None,
                 "guid": None, "image": None}
        yield self.article_request(url, entry, keys)

    def _page_error(self, entry, keys, url, sentence):
        # A page added by hand that cannot be read is an error to show, not a bare item to store.
        self.outcome.error = sentence
        self.session.log_error(self.source, url, sentence)
        return []
