"""Item pipeline: hands every item to the crawl session, which stores it in batches and tags it."""

from __future__ import annotations


class StorePipeline:
    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item, spider=None):
        spider = spider or self.crawler.spider
        spider.session.add_item(dict(item))
        return item
