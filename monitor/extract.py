"""Article page bytes -> text and metadata with trafilatura, pure (it parses, it never fetches).

Runs in extraction worker processes: trafilatura in threads has crashed lxml here.
"""

from __future__ import annotations

import hashlib
import re

from monitor.errors import ParseError
from monitor.feeds import html_to_text, sane_date
from monitor.urls import safe_url

# The languages whose month and day names htmldate (trafilatura's date finder) may read with
# dateparser: the press of Europe and its neighbours, and the languages of the people it writes
# about. dateparser's default is every one of its ~200 locales, whose patterns take 3.4 s of CPU
# to compile before the first page can be read (1.4 s for these). Numeric and ISO dates, and the
# dates in a page's metadata, do not depend on this list; on the 346 corpus pages of
# bench/bench_ingest.py the dates found are the same with it and without it.
DATE_LANGUAGES = ("en", "nl", "fr", "de", "it", "es", "pt", "ca", "eu", "gl", "pl", "cs", "sk",
                  "sl", "hr", "bs", "sr", "mk", "bg", "sq", "el", "tr", "hu", "ro", "ru", "uk",
                  "fi", "et", "lt", "lv", "sv", "da", "nb", "mt", "ar", "fa")

_HTML_LANG = re.compile(rb"<html\b[^>]{0,400}?\blang\s*=\s*[\"']?([A-Za-z]{2})\b", re.IGNORECASE)
MIN_TEXT = 80


def extract_article(data: bytes, url: str) -> dict:
    """Title, text, date, author, declared language, canonical URL and lead image of a page."""
    import trafilatura  # imported in the worker, where the cost is paid once
    from trafilatura.utils import load_html

    use_date_languages()
    if not data or not data.strip():
        raise ParseError(url, "The article page is empty.")
    try:
        tree = load_html(data)
        # trafilatura prunes a copy of the tree it is given, so the metadata is read from the
        # same parse afterwards, and only for pages that have an article.
        document = None if tree is None else trafilatura.bare_extraction(
            tree, url=url, include_comments=False, include_tables=True)
        meta = None if document is None else page_metadata(tree, url)
    except Exception as exc:  # trafilatura raises many types on odd markup; report, don't crash
        raise ParseError(url, f"The article page could not be read ({type(exc).__name__}).") from None
    if document is None:
        raise ParseError(url, "No article text was found on the page.")
    text = (document.text or "").strip()
    if len(text) < MIN_TEXT:
        raise ParseError(url, "No article text was found on the page.")
    lang_match = _HTML_LANG.search(data[:20000])
    published = _iso_date(meta.date) if meta.date else None
    return {
        "title": html_to_text(meta.title, 1000),
        "text": text,
        "author": html_to_text(meta.author, 300) or None,
        "published": published,
        "declared_language": lang_match.group(1).decode().lower() if lang_match else None,
        "canonical": safe_url(meta.url, url),
        "image": safe_url(meta.image, url),
        "description": html_to_text(meta.description, 2000),
        "content_hash": hashlib.sha1(text.encode("utf-8", "replace")).hexdigest(),
    }


_date_parser = None


def use_date_languages() -> None:
    """Make htmldate's dateparser fallback read only DATE_LANGUAGES (once per process).

    htmldate offers no setting for this: its parser comes from a cached module function, which is
    replaced by one with the same settings and a language list. If htmldate changes, dates are
    still found, with every locale (a slower start, nothing lost).
    """
    global _date_parser
    if _date_parser is not None:
        return
    try:
        import htmldate.extractors as extractors
        from dateparser import DateDataParser

        parser = DateDataParser(languages=list(DATE_LANGUAGES), settings={
            # htmldate 1.9-1.11's own settings for its parser (htmldate/extractors.py)
            "NORMALIZE": True, "PARSERS": ["custom-formats", "absolute-time"],
            "PREFER_DATES_FROM": "past", "PREFER_LOCALE_DATE_ORDER": True,
            "RETURN_AS_TIMEZONE_AWARE": False, "STRICT_PARSING": True})
        if callable(getattr(extractors, "get_external_parser", None)):
            extractors.get_external_parser = lambda: parser
        _date_parser = parser
    except (ImportError, TypeError, ValueError):
        _date_parser = False


def share_justext_stoplist() -> None:
    """Build trafilatura's all-languages justext stoplist, and justext's frozen set of it, now.

    When its own extractor finds too little text, trafilatura falls back to justext with the
    stopwords of every justext language (154,000 words), built on first use in each process and
    then frozen (lower-cased) by justext's cached `define_stoplist`: 0.3 s of CPU and some 30 MB
    in every extraction worker, again each time one is recycled. Called in the workers' fork
    server, both are built once per crawl and shared copy-on-write by every worker.
    """
    import justext.core
    from trafilatura import external

    justext.core.define_stoplist(external.JT_STOPLIST or external.jt_stoplist_init())


def page_metadata(tree, url: str):
    """The fields of trafilatura's `extract_metadata` that an item keeps, from the same functions.

    trafilatura's own pass also looks for categories, tags, licence and site name, which cost a
    tenth of each page's extraction time and are never stored; the fields kept are computed exactly
    as trafilatura computes them (tests/test_extract.py compares both on real pages).
    """
    from htmldate import find_date
    from trafilatura import metadata as tm
    from trafilatura.settings import set_date_params

    meta = tm.examine_meta(tree)
    if meta.author and " " not in meta.author:  # as trafilatura: a single word is rarely a name
        meta.author = None
    try:
        meta = tm.extract_meta_json(tree, meta)
    except Exception:  # trafilatura guards the same call: JSON-LD on the web is often broken
        pass
    meta.title = meta.title or tm.extract_title(tree)
    meta.author = meta.author or tm.extract_author(tree)
    meta.url = meta.url or tm.extract_url(tree, url)
    date_params = set_date_params(True)  # trafilatura's default: EXTENSIVE_DATE_SEARCH = on
    date_params["url"] = meta.url
    meta.date = find_date(tree, **date_params)
    meta.clean_and_trim()
    return meta


def _iso_date(value: str) -> str | None:
    import time

    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return sane_date(time.strptime(value[: len("2026-01-01T00:00:00")], fmt))
        except ValueError:
            continue
    return None
