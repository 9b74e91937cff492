"""Scrapy settings derived from [crawl]: robots.txt, throttling, retries, size and time limits."""

from __future__ import annotations

from monitor.config import CrawlConfig


def scrapy_settings(crawl: CrawlConfig, log_level: str = "ERROR") -> dict:
    return {
        "BOT_NAME": "border-news-monitor",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "ROBOTSTXT_USER_AGENT": crawl.user_agent,
        "CONCURRENT_REQUESTS": crawl.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_host,
        "DOWNLOAD_DELAY": crawl.delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if crawl.delay > 0 else 0,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "DNS_TIMEOUT": min(crawl.timeout, 20),
        "DOWNLOAD_MAXSIZE": crawl.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_ENABLED": crawl.retries > 0,
        "RETRY_TIMES": crawl.retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "REDIRECT_MAX_TIMES": 8,
        "METAREFRESH_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": log_level,
        "LOG_ENABLED": log_level != "NONE",
        "TWISTED_DNS_RESOLVER": "monitor.crawl.guard.GuardedResolver",
        # Only http(s) ever leaves the system.
        "DOWNLOAD_HANDLERS": {"file": None, "ftp": None, "s3": None, "data": None},
        "DOWNLOADER_MIDDLEWARES": {
            "monitor.crawl.guard.GuardRequestMiddleware": 10,
            "monitor.crawl.gate.ExtractionGateMiddleware": 20,
            "monitor.crawl.middlewares.BackoffMiddleware": 560,
            "monitor.crawl.guard.GuardResponseMiddleware": 990,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
        },
        "ITEM_PIPELINES": {"monitor.crawl.pipelines.StorePipeline": 300},
        "MONITOR_ALLOW_HOSTS": list(crawl.allow_hosts),
        "MONITOR_ONLY_ALLOW_HOSTS": crawl.only_allow_hosts,
        "HTTPCACHE_ENABLED": False,
        "AUTOTHROTTLE_ENABLED": False,
        "REACTOR_THREADPOOL_MAXSIZE": 4,
        # Scrapy starts CONCURRENT_ITEMS asyncio tasks for every response's output (100 by
        # default); our pipeline is synchronous, so they only cost reactor time per page.
        "CONCURRENT_ITEMS": 4,
        "STATS_DUMP": False,
        # Every extension, middleware and stats counter below costs the reactor per request or per
        # downloaded chunk (signals, Deferred chains), and a crawl is CPU-bound beside its
        # extraction workers. We read none of Scrapy's stats, and send no Referer (it would tell
        # every site which feed or page linked to it).
        "STATS_CLASS": "scrapy.statscollectors.DummyStatsCollector",
        "SPIDER_MIDDLEWARES": {"scrapy.spidermiddlewares.referer.RefererMiddleware": None,
                               "scrapy.spidermiddlewares.depth.DepthMiddleware": None},
        # No control ports: a crawler must not listen on the network.
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS": {"scrapy.extensions.telnet.TelnetConsole": None,
                       "scrapy.extensions.remote_control.RemoteControl": None,
                       "scrapy.extensions.corestats.CoreStats": None,
                       "scrapy.extensions.logstats.LogStats": None,
                       "scrapy.extensions.memusage.MemoryUsage": None,
                       "scrapy.extensions.feedexport.FeedExporter": None,
                       "scrapy.extensions.spiderstate.SpiderState": None},
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }
