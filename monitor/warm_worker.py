"""Loaded once by the extraction workers' fork server, before it forks any worker.

Every extraction worker is forked from that server, so it starts with the parsers imported and
with dateparser's locale data loaded. htmldate (trafilatura's date finder) falls back to
dateparser, which loads and compiles the patterns of each locale it may use on first use: 3.4 s
of CPU for all ~200, 1.4 s for the languages of monitor.extract.DATE_LANGUAGES. Paid in every
worker, and again each time a worker is recycled, that was a fifth of a crawl's extraction time;
paid here, it is paid once per crawl, and the loaded data is shared copy-on-write by all the
workers.
"""

import feedparser  # noqa: F401
import trafilatura  # noqa: F401

from monitor.extract import use_date_languages

use_date_languages()
try:  # htmldate's own parser and month-name table (not public API: a miss only costs time)
    from htmldate.extractors import get_external_parser, month_words

    # A string no locale can read makes dateparser try (and so load) every one it may use.
    get_external_parser().get_date_data("warm up 1 2 3 zz")
    month_words()
except (ImportError, AttributeError):
    pass

# trafilatura's justext fallback: its all-languages stoplist, built once here (monitor/extract.py).
from monitor.extract import share_justext_stoplist  # noqa: E402

share_justext_stoplist()

# Move what is loaded into the garbage collector's permanent generation: a collection in a
# worker then never walks (and so never writes to, and copies) the pages it shares with this server.
import gc  # noqa: E402

gc.collect()
gc.freeze()
