"""Real servers on loopback used by several areas: the fixture web site (feeds, pages, hostile)."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.helpers import DATA
from tests.servers import Site


@pytest.fixture
def site():
    server = Site().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def article_pages() -> list[dict]:
    """Real article pages (bytes) with their original URL, title and human-marked text."""
    index = json.loads((DATA / "articles" / "index.json").read_text(encoding="utf-8"))
    pages = []
    for name, meta in index.items():
        body = gzip.decompress((DATA / "articles" / name).read_bytes())
        pages.append({"name": name.removesuffix(".html.gz"), "body": body, **meta})
    return pages
