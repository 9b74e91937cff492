"""Article extraction keeps exactly what trafilatura's own metadata pass finds, on real pages.

`monitor.extract.page_metadata` runs only the parts of trafilatura's metadata pass whose fields an
item stores (it skips categories, tags, licence and site name); this holds it to trafilatura's
answer, so an upgrade of trafilatura that changes its metadata functions turns this red.
"""

from __future__ import annotations

import trafilatura

from monitor.extract import extract_article
from monitor.feeds import html_to_text


def test_metadata_and_text_match_trafilaturas_own_extraction(article_pages):
    compared = 0
    for page in article_pages:
        url = page["url"]
        ours = extract_article(page["body"], url)
        theirs = trafilatura.bare_extraction(page["body"], url=url, with_metadata=True,
                                             include_comments=False, include_tables=True)
        assert ours["text"] == theirs.text.strip(), page["name"]
        assert ours["title"] == html_to_text(theirs.title, 1000), page["name"]
        assert ours["author"] == (html_to_text(theirs.author, 300) or None), page["name"]
        assert ours["description"] == html_to_text(theirs.description, 2000), page["name"]
        assert (ours["published"] or "")[:10] == (theirs.date or "")[:10], page["name"]
        assert ours["image"] == theirs.image or (ours["image"] is None and not theirs.image), page["name"]
        compared += 1
    assert compared >= 8
    # Every page keeps a title: the digest and the desk show it.
    assert all(extract_article(p["body"], p["url"])["title"] for p in article_pages)
