"""News sitemap bytes -> entries, pure (lxml with entities and network access disabled)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

from lxml import etree

from monitor.errors import ParseError
from monitor.feeds import html_to_text
from monitor.urls import safe_url

_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


@dataclass
class SitemapResult:
    entries: list[dict]
    children: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_sitemap(data: bytes, url: str, max_entries: int = 5000) -> SitemapResult:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.GzipFile(fileobj=__import__("io").BytesIO(data)).read(50_000_000)
        except (OSError, EOFError):
            raise ParseError(url, "The sitemap is a damaged gzip file.") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             load_dtd=False, recover=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(url, f"The sitemap is not valid XML ({exc}).") from None
    if root is None:
        raise ParseError(url, "The sitemap is empty or not XML.")
    tag = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if tag == "sitemapindex":
        children = [safe_url(loc.text, url) for loc in root.iter("{*}loc")]
        return SitemapResult(entries=[], children=[c for c in children if c])
    if tag != "urlset":
        raise ParseError(url, "This address does not return a sitemap (no <urlset>).")
    entries = []
    for node in root.iter("{*}url"):
        link = safe_url(node.findtext("{*}loc"), url)
        if not link:
            continue
        news = node.find(f"{_NEWS}news")
        title = html_to_text(news.findtext(f"{_NEWS}title") if news is not None else "", 1000)
        published = news.findtext(f"{_NEWS}publication_date") if news is not None else None
        entries.append({"link": link, "title": title, "summary": "", "author": None,
                        "guid": None, "image": None, "published": _iso(published),
                        "language": (news.findtext(f"{_NEWS}publication/{_NEWS}language")
                                     if news is not None else None)})
        if len(entries) >= max_entries:
            break
    return SitemapResult(entries=entries)


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    from feedparser.datetimes import _parse_date

    from monitor.feeds import sane_date

    return sane_date(_parse_date(value.strip()))
