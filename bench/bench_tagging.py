"""Tagging throughput on one core: the compiled matcher over title, summary and the first 2,000
characters of real article text (shared corpus + labelled set), with the shipped taxonomy and with
a taxonomy four times larger. Run: .venv/bin/python bench/bench_tagging.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.language import detect_language  # noqa: E402
from monitor.tagging import Matcher  # noqa: E402
from monitor.taxonomy import parse_taxonomy  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "articles"
LABELLED = ROOT / "tests" / "data" / "labelled"


def corpus_items() -> list[dict]:
    """Real published text: fundus and Zyte AEB ground-truth articles, plus the labelled dev set."""
    items = []
    for path in sorted((CORPUS / "fundus").glob("*/*.json")):
        for article in json.loads(path.read_text(encoding="utf-8")).values():
            body = article.get("body") or {}
            paragraphs = [p for s in body.get("sections", []) for p in s.get("paragraphs", [])]
            items.append({"title": article.get("title") or "", "summary": " ".join(body.get("summary") or []),
                          "text": "\n".join(paragraphs), "lang": path.parent.name})
    truth = json.loads((CORPUS / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    for article in truth.values():
        text = article.get("articleBody") or ""
        first, _, rest = text.partition("\n")
        items.append({"title": first[:200], "summary": "", "text": rest, "lang": None})
    for line in (LABELLED / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            items.append({"title": row["title"], "summary": row.get("lede") or "", "text": "",
                          "lang": row["lang"]})
    return [i for i in items if i["title"] or i["text"]]


def shipped_raw() -> dict:
    return tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))


def enlarged(raw: dict, factor: int, vocabulary: list[str]) -> dict:
    """The shipped taxonomy plus (factor - 1) x as many extra real words as terms per language."""
    raw = json.loads(json.dumps(raw))
    words = iter(vocabulary * 50)
    for kind in ("regions", "topics"):
        for table in raw[kind].values():
            for lang, terms in list(table["terms"].items()):
                extra = [f"{next(words)} {next(words)}:1" for _ in range(len(terms) * (factor - 1))]
                table["terms"][lang] = terms + extra
    return raw


def run(matcher: Matcher, items: list[dict], detect: bool = False) -> float:
    started = time.process_time()
    for item in items:
        lang = item["lang"]
        if detect:
            lang = detect_language(f"{item['title']} {item['summary']} {item['text'][:600]}")
        matcher.tag(item["title"], item["summary"], item["text"], lang)
    return len(items) / (time.process_time() - started)


def median_rate(matcher, items, repeats=5, detect=False) -> float:
    return statistics.median(run(matcher, items, detect) for _ in range(repeats))


def main() -> None:
    base = corpus_items()
    items = (base * (10000 // len(base) + 1))[:10000]
    chars = statistics.mean(len(i["title"]) + len(i["summary"]) + min(len(i["text"]), 2000) for i in items)
    raw = shipped_raw()
    shipped = parse_taxonomy(raw, ROOT / "config.toml")
    started = time.perf_counter()
    matcher = Matcher(shipped)
    compile_s = time.perf_counter() - started
    terms = sum(len(c.terms) for c in shipped.categories())
    print(f"{len(base)} real texts repeated to {len(items)} items, {chars:.0f} characters tagged per item")
    print(f"shipped taxonomy: {terms} terms, {matcher.pattern_count} patterns, compiled in {compile_s:.2f}s")
    rate = median_rate(matcher, items)
    print(f"  tagging: {rate:,.0f} items/s (median of 5, one core, CPU time)")
    with_lang = median_rate(matcher, items[:3000], repeats=3, detect=True)
    print(f"  tagging + language detection: {with_lang:,.0f} items/s")
    vocabulary = sorted({w for i in base for w in i["text"].split() if w.isalpha() and len(w) > 5})
    big = parse_taxonomy(enlarged(raw, 4, vocabulary), ROOT / "config.toml")
    big_matcher = Matcher(big)
    big_terms = sum(len(c.terms) for c in big.categories())
    big_rate = median_rate(big_matcher, items)
    print(f"4x taxonomy: {big_terms} terms, {big_matcher.pattern_count} patterns")
    print(f"  tagging: {big_rate:,.0f} items/s; ratio to shipped {big_rate / rate:.2f}")
    print(f"target >= 5,000 items/s: {'met' if min(rate, big_rate) >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
