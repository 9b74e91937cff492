"""Measure the taxonomy on labelled items: precision, recall and F1 per tag and micro-averaged,
relevance accuracy, and bootstrap confidence intervals for the three headline figures.

Pure: labelled dicts in, figures out (`monitor tags eval` prints them).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from monitor.tagging import matcher_for
from monitor.taxonomy import Taxonomy

INTERVAL_LEVEL = 0.95
INTERVAL_SEED = 0  # fixed, so that the same file and taxonomy always print the same interval


def evaluate(taxonomy: Taxonomy, examples: Iterable[dict], rounds: int = 0) -> dict:
    """Labelled items ({title, lede, lang, relevant, regions, topics}) -> precision/recall/F1.

    Returns {"n", "relevance_accuracy", "regions": {"micro": {...}, "per_tag": {...}},
    "topics": ..., "errors"} where each figure dict has tp, fp, fn, precision, recall, f1. Parents implied by a
    labelled child count as labelled, exactly as tagging stores them. With `rounds` > 0 the report
    also has "intervals" (see `bootstrap_intervals`).
    """
    matcher = matcher_for(taxonomy)
    counts: dict[str, dict[str, list[int]]] = {"region": {}, "topic": {}}
    per_item: list[tuple[int, int, int, int, int, int, int]] = []
    correct = n = 0
    errors = []
    for ex in examples:
        n += 1
        result = matcher.tag(ex.get("title"), ex.get("lede") or ex.get("summary"), ex.get("text"),
                             ex.get("lang"), home=taxonomy.settings.home_region_of(ex.get("url")))
        gold_rel = bool(ex.get("relevant"))
        correct += result.relevant == gold_rel
        item_errors = {}
        item_counts = [int(result.relevant == gold_rel)]
        if result.relevant != gold_rel:
            item_errors["relevant"] = {"gold": gold_rel, "predicted": result.relevant}
        for kind, key in (("region", "regions"), ("topic", "topics")):
            table = taxonomy.regions if kind == "region" else taxonomy.topics
            gold = set()
            for slug in ex.get(key) or ():
                gold.add(slug)
                if slug in table:
                    gold.update(taxonomy.ancestors(kind, slug))
            pred = result.slugs(kind)
            for slug in gold | pred:
                c = counts[kind].setdefault(slug, [0, 0, 0])
                if slug in gold and slug in pred:
                    c[0] += 1
                elif slug in pred:
                    c[1] += 1
                else:
                    c[2] += 1
            item_counts += [len(gold & pred), len(pred - gold), len(gold - pred)]
            if gold != pred:
                item_errors[key] = {"missing": sorted(gold - pred), "extra": sorted(pred - gold)}
        per_item.append(tuple(item_counts))
        if item_errors:
            errors.append({"title": ex.get("title"), **item_errors})
    report: dict[str, Any] = {"n": n, "relevance_accuracy": correct / n if n else 0.0,
                              "errors": errors}
    for kind, key in (("region", "regions"), ("topic", "topics")):
        per_tag = {slug: _prf(*c) for slug, c in sorted(counts[kind].items())}
        total = [sum(c[i] for c in counts[kind].values()) for i in range(3)]
        report[key] = {"micro": _prf(*total), "per_tag": per_tag}
    if rounds > 0:
        report["intervals"] = bootstrap_intervals(per_item, rounds)
    return report


def bootstrap_intervals(per_item: list[tuple[int, ...]], rounds: int,
                        level: float = INTERVAL_LEVEL, seed: int = INTERVAL_SEED) -> dict:
    """Percentile bootstrap of relevance accuracy and region and topic micro-F1.

    `per_item` holds one (relevance correct, region tp, fp, fn, topic tp, fp, fn) per item. Each
    round draws len(per_item) items with replacement and recomputes the three figures; the
    interval is the middle `level` of the rounds. It treats items as independent: where a file
    holds several reports of one story, their errors go together and the true interval is wider.
    """
    n = len(per_item)
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {"relevance_accuracy": [], "regions_f1": [], "topics_f1": []}
    for _ in range(rounds):
        sums = [0] * 7
        for i in range(n):
            row = per_item[int(rng.random() * n)]
            for k in range(7):
                sums[k] += row[k]
        samples["relevance_accuracy"].append(sums[0] / n if n else 0.0)
        samples["regions_f1"].append(_prf(*sums[1:4])["f1"])
        samples["topics_f1"].append(_prf(*sums[4:7])["f1"])
    lo_at = int((1 - level) / 2 * rounds)
    hi_at = min(rounds - 1, int((1 + level) / 2 * rounds))
    out: dict[str, Any] = {"level": level, "rounds": rounds}
    for name, values in samples.items():
        values.sort()
        out[name] = [values[lo_at], values[hi_at]]
    return out


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}
