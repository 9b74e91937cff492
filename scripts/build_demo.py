"""Build the offline demo snapshot in demo/ from real material (run by developers, output committed).

Inputs: ../shared/corpus (real feeds and article pages, with licences) and tests/data/labelled
(real headlines and ledes quoted from published news, with their addresses). Nothing is invented:
feeds that list corpus pages or labelled items are generated wrappers around real text.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
DEMO = ROOT / "demo"

REAL_FEEDS = {
    "reliefweb-ukraine": ("the-deep__reliefweb_updates_ukraine_2020-09.xml", "en"),
    "emm-newsbrief": ("the-deep__emm_newsbrief_latest_en_2022-06.xml", "en"),
    "guardian": ("feeder__rss_theguardian.xml", "en"),
    "le-monde": ("feeder__rss_lemonde.xml", "fr"),
    "golem": ("feeder__golem-de.xml", "de"),
}
ARTICLE_PAGES = [
    "trafilatura-eval/html/bundespolizei.de-Belarus.html.gz",
    "trafilatura-eval/html/handelsblatt.com.grenzschliessungen.html.gz",
    "trafilatura-eval/html/legrandcontinent.eu.heran.html.gz",
    "trafilatura-eval/html/awo.org-Menschenrechte.html.gz",
    "fundus/es/ElPais_2024_10_15.html.gz",
    "fundus/pl/Rzeczpospolita_2025_02_02.html.gz",
    "fundus/be/Nieuwsblad_2025_02_02.html.gz",
    "fundus/fr/EuronewsFR_2024_04_30.html.gz",
    "fundus/it/CorriereDellaSera_2025_02_04.html.gz",
    "fundus/uk/BBC_2024_08_01.html.gz",
]
_CANONICAL = re.compile(rb"<link[^>]+canonical[^>]*>|<meta[^>]+(?:og:url|twitter:url)[^>]*>", re.I)


def rss(title: str, language: str, items: list[dict]) -> str:
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
             f"<title>{escape(title)}</title><link>http://127.0.0.1/</link>",
             f"<language>{language}</language><description>{escape(title)}</description>"]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item['title'])}</title><link>{escape(item['link'])}</link>")
        if item.get("description"):
            parts.append(f"<description>{escape(item['description'])}</description>")
        if item.get("pubDate"):
            parts.append(f"<pubDate>{item['pubDate']}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>\n")
    return "".join(parts)


def main() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    (DEMO / "feeds").mkdir(parents=True)
    (DEMO / "pages").mkdir()
    (DEMO / "LICENSES").mkdir()
    sources = []
    for name, (file, language) in REAL_FEEDS.items():
        shutil.copy(CORPUS / "feeds" / file, DEMO / "feeds" / f"{name}.xml")
        sources.append({"name": f"demo-{name}", "path": f"/feeds/{name}.xml", "language": language,
                        "full_text": False, "origin": f"corpus/feeds/{file}"})

    # Real article pages, served on loopback and listed by a feed: extracted with full text.
    items = []
    for rel in ARTICLE_PAGES:
        body = gzip.decompress((CORPUS / "articles" / rel).read_bytes())
        slug = Path(rel).name.removesuffix(".html.gz").removesuffix(".html").replace("/", "-")
        (DEMO / "pages" / f"{slug}.html").write_bytes(_CANONICAL.sub(b"", body))
        title = re.search(rb"<title[^>]*>(.*?)</title>", body, re.S | re.I)
        text = title.group(1).decode("utf-8", "replace").strip() if title else slug
        items.append({"title": re.sub(r"\s+", " ", text)[:200], "link": f"{{BASE}}/pages/{slug}.html"})
    (DEMO / "feeds" / "articles.xml").write_text(rss("Demo: article pages", "en", items), "utf-8")
    sources.append({"name": "demo-articles", "path": "/feeds/articles.xml", "language": None,
                    "full_text": True, "origin": "corpus/articles (see SOURCES.md)"})

    # Real headlines and ledes of the labelled development set, one feed per language.
    by_language: dict[str, list[dict]] = {}
    for line in (ROOT / "tests" / "data" / "labelled" / "dev.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        if not row["url"].startswith(("http://", "https://")):
            continue
        by_language.setdefault(row["lang"], []).append(
            {"title": row["title"], "link": row["url"], "description": row["lede"], "pubDate": None})
    for language, entries in sorted(by_language.items()):
        if len(entries) < 5:
            continue
        (DEMO / "feeds" / f"press-{language}.xml").write_text(
            rss(f"Demo: press review ({language})", language, entries), "utf-8")
        sources.append({"name": f"demo-press-{language}", "path": f"/feeds/press-{language}.xml",
                        "language": language, "full_text": False,
                        "origin": "tests/data/labelled/dev.jsonl (quoted headlines and ledes)"})
    sources.append({"name": "demo-broken", "path": "/feeds/moved-away.xml", "language": "en",
                    "full_text": False, "origin": "a feed that no longer exists (shows failure handling)"})
    (DEMO / "sources.json").write_text(json.dumps(sources, indent=1), "utf-8")
    for folder in ("feeds", "articles"):
        for licence in (CORPUS / folder / "LICENSES").iterdir():
            shutil.copy(licence, DEMO / "LICENSES" / licence.name)
    (DEMO / "SOURCES.md").write_text(
        "# Offline demo snapshot\n\nBuilt by `scripts/build_demo.py`. Real material only:\n\n"
        "- `feeds/<name>.xml` for " + ", ".join(REAL_FEEDS) + ": real feeds copied byte for byte "
        "from `../shared/corpus/feeds/` (see its SOURCES.md; licences in LICENSES/).\n"
        "- `pages/*.html`: real article pages from `../shared/corpus/articles/` (Zyte/trafilatura/"
        "fundus sets; canonical-link tags removed so the loopback copy is its own address), "
        "listed by the generated `feeds/articles.xml`.\n"
        "- `feeds/press-<lang>.xml`: generated feeds wrapping the real, quoted headlines and ledes of "
        "`tests/data/labelled/dev.jsonl`, each linking to its original address (not fetched: "
        "`full_text = false`). They carry no date, so they count as gathered today and form "
        "this week's digest.\n", "utf-8")
    print(f"demo/: {len(sources)} sources")


if __name__ == "__main__":
    main()
