"""Scrapy glue: settings, the address guard, middlewares, the storage pipeline and the runner.

Use `monitor.crawl.run_sources` (in-process) or `monitor.crawl.fetch_one` (one URL, in a child
process); nothing outside this package touches Scrapy directly.
"""

from monitor.crawl.runner import SourceOutcome, crawl_in_subprocess, fetch_one, run_sources

__all__ = ["SourceOutcome", "crawl_in_subprocess", "fetch_one", "run_sources"]
