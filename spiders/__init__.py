"""Scrapy spiders, one class per kind of source: feed, listing page, news sitemap."""

from spiders.article import ArticleSpider
from spiders.feed import FeedSpider
from spiders.listing import ListingSpider
from spiders.sitemap import NewsSitemapSpider

SPIDERS = {"feed": FeedSpider, "page": ListingSpider, "sitemap": NewsSitemapSpider,
           "article": ArticleSpider}

__all__ = ["SPIDERS", "ArticleSpider", "FeedSpider", "ListingSpider", "NewsSitemapSpider"]
