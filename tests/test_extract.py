"""Article extraction gives exactly trafilatura's own answer on real pages.

`monitor.extract` runs only the parts of trafilatura's metadata pass whose fields an item stores.
The reference here is plain trafilatura in a separate interpreter that never imports `monitor`, so
an upgrade of trafilatura that changes what that shortcut relies on turns this red.
"""

from __future__ import annotations

import json
import subprocess
import sys

from monitor.extract import extract_article
from monitor.feeds import html_to_text

_REFERENCE = """
import gzip, json, sys
import trafilatura
out = {}
for name, url in json.loads(sys.argv[1]).items():
    body = gzip.decompress(open(name, "rb").read())
    doc = trafilatura.bare_extraction(body, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True)
    out[name] = {k: getattr(doc, k) for k in ("text", "title", "author", "description", "date",
                                                "image", "url")}
print(json.dumps(out))
"""


def test_text_and_metadata_match_plain_trafilatura(article_pages, tmp_path):
    from tests.fixtures_servers import DATA

    names = {str(DATA / "articles" / f"{p['name']}.html.gz"): p["url"] for p in article_pages}
    reference = json.loads(subprocess.run([sys.executable, "-c", _REFERENCE, json.dumps(names)],
                                          capture_output=True, check=True, text=True).stdout)
    assert len(reference) >= 8
    for page in article_pages:
        theirs = reference[str(DATA / "articles" / f"{page['name']}.html.gz")]
        ours = extract_article(page["body"], page["url"])
        where = page["name"]
        assert ours["text"] == theirs["text"].strip(), where
        assert ours["title"] == html_to_text(theirs["title"], 1000), where
        assert ours["author"] == (html_to_text(theirs["author"], 300) or None), where
        assert ours["description"] == html_to_text(theirs["description"], 2000), where
        assert (ours["published"] or "")[:10] == (theirs["date"] or "")[:10], where
        assert ours["image"] == (theirs["image"] or None), where
        assert ours["title"], where  # the digest and the desk show it


def test_the_fork_server_builds_justexts_stoplist_once_for_every_worker():
    """Each extraction worker used to build the 154,000-word stoplist itself (0.3 s, ~30 MB)."""
    from monitor.workers import WorkerPool

    pool = WorkerPool(workers=1, timeout=60)
    try:
        pool.start_extraction()
        pool._started["extract"].result(timeout=120)
        built = pool.pools["extract"].schedule(_stoplist_state).result(timeout=60)
    finally:
        pool.close()
    assert built["words"] > 100_000  # every justext language, before any page was read
    assert built["frozen_sets"] >= 1


def _stoplist_state() -> dict:
    import justext.core
    from trafilatura import external

    return {"words": len(external.JT_STOPLIST or ()),
            "frozen_sets": justext.core.define_stoplist.cache_info().currsize}


def test_dates_written_in_words_are_read_in_the_presss_languages():
    # htmldate falls back to dateparser for these; the crawl loads only DATE_LANGUAGES' locales.
    body = "<p>" + "Το σκάφος του λιμενικού εντόπισε τη λέμβο ανοιχτά της Λέσβου. " * 6 + "</p>"
    found = {}
    for label, lang in (("3 Σεπτεμβρίου 2021", "el"), ("12 marca 2023 r.", "pl"),
                        ("le 5 mai 2022", "fr"), ("14. studenoga 2019.", "hr")):
        page = (f'<html lang="{lang}"><body><article><h1>Έκθεση για τη Λέσβο</h1>'
                f'<div class="date">{label}</div>{body}</article></body></html>').encode()
        found[lang] = extract_article(page, f"http://127.0.0.1/{lang}.html")["published"]
    assert found == {"el": "2021-09-03T00:00:00Z", "pl": "2023-03-12T00:00:00Z",
                     "fr": "2022-05-05T00:00:00Z", "hr": "2019-11-14T00:00:00Z"}
