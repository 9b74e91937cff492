"""Article page bytes -> text and metadata with trafilatura, pure (it parses, it never fetches).

Runs in extraction worker processes: trafilatura in threads has crashed lxml here.
"""

from __future__ import annotations

import hashlib
import re

from monitor.errors import ParseError
from monitor.feeds import html_to_text, sane_date
from monitor.urls import safe_url

_HTML_LANG = re.compile(rb"<html\b[^>]{0,400}?\blang\s*=\s*[\"']?([A-Za-z]{2})\b", re.IGNORECASE)
MIN_TEXT = 80


def extract_article(data: bytes, url: str) -> dict:
    """Title, text, date, author, declared language, canonical URL and lead image of a page."""
    import trafilatura  # imported in the worker, where the cost is paid once

    if not data or not data.strip():
        raise ParseError(url, "The article page is empty.")
    try:
        document = trafilatura.bare_extraction(data, url=url, with_metadata=True,
                                               include_comments=False, include_tables=True)
    except Exception as exc:  # trafilatura raises many types on odd markup; report, don't crash
        raise ParseError(url, f"The article page could not be read ({type(exc).__name__}).") from None
    if document is None:
        raise ParseError(url, "No article text was found on the page.")
    meta = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    text = (meta.get("text") or "").strip()
    if len(text) < MIN_TEXT:
        raise ParseError(url, "No article text was found on the page.")
    lang_match = _HTML_LANG.search(data[:20000])
    published = None
    if meta.get("date"):
        published = _iso_date(meta["date"])
    return {
        "title": html_to_text(meta.get("title"), 1000),
        "text": text,
        "author": html_to_text(meta.get("author"), 300) or None,
        "published": published,
        "declared_language": lang_match.group(1).decode().lower() if lang_match else None,
        "canonical": safe_url(meta.get("url"), url),
        "image": safe_url(meta.get("image"), url),
        "description": html_to_text(meta.get("description"), 2000),
        "content_hash": hashlib.sha1(text.encode("utf-8", "replace")).hexdigest(),
    }


def _iso_date(value: str) -> str | None:
    import time

    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return sane_date(time.strptime(value[: len("2026-01-01T00:00:00")], fmt))
        except ValueError:
            continue
    return None
