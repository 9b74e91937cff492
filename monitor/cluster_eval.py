"""Story-cluster quality on labelled rows: purity and same-story pair recall
(bench/eval_clustering.py, the clustering tests)."""

from __future__ import annotations

import itertools
from collections import defaultdict

from monitor.clustering import Doc, DocFreq, link_docs, make_docs


def evaluate_clusters(stories: dict[int, str], members: dict[int, list[int]]) -> dict:
    """Purity of predicted clusters and the share of true same-story pairs clustered together."""
    clusters = {tuple(ids) for ids in members.values()}
    n = sum(len(c) for c in clusters)
    majority = 0
    for ids in clusters:
        counts: dict[str, int] = defaultdict(int)
        for i in ids:
            counts[stories[i]] += 1
        majority += max(counts.values())
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, story in stories.items():
        by_story[story].append(i)
    pairs = together = 0
    for ids in by_story.values():
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pairs += 1
                together += members[ids[x]] is members[ids[y]] or members[ids[x]] == members[ids[y]]
    return {"items": n, "clusters": len(clusters), "purity": majority / n if n else 1.0,
            "pairs": pairs, "pair_recall": together / pairs if pairs else 1.0}


def labelled_docs(rows: list[dict], matcher) -> list[Doc]:
    """Docs of labelled story rows ({"title", "lede", "lang", "published", "published_approx"}),
    tagged by `matcher` (monitor.tagging.matcher_for(taxonomy)). Ids are the rows' positions.

    A row's date is `published`, else `published_approx` (a month: its middle), else unknown."""
    specs = []
    for i, r in enumerate(rows):
        res = matcher.tag(r["title"], r.get("lede"), None, r.get("lang"))
        specs.append(dict(item_id=i, title=r["title"], summary=r.get("lede") or "", text="",
                          published=r.get("published") or r.get("published_approx"),
                          relevant=res.relevant, regions=frozenset(res.slugs("region")),
                          topics=frozenset(res.slugs("topic"))))
    return make_docs(specs)


def background_of(rows: list[dict], matcher) -> DocFreq:
    """Document frequencies of other real items' title and lede (an archive's worth of words):
    in a small labelled set every word is rare, in an archive the route's names and the words of
    every shipwreck are not."""
    df = DocFreq()
    for doc in labelled_docs(rows, matcher):
        df.add(doc)
    return df


def evaluate_labelled(rows: list[dict], matcher, settings,
                      background: DocFreq | None = None) -> dict:
    """evaluate_clusters over labelled story rows, plus the pair recall of the pairs the window
    allows (both dated, at most cluster_window_days apart) and the pairs missed or wrongly merged:
    what `bench/eval_clustering.py` prints."""
    docs = labelled_docs(rows, matcher)
    members = link_docs(docs, settings, background)
    stories = {i: r["story"] for i, r in enumerate(rows)}
    report = evaluate_clusters(stories, members)
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, story in stories.items():
        by_story[story].append(i)
    window = settings.cluster_window_days
    in_window = together = 0
    missed = []
    for ids in by_story.values():
        for x, y in itertools.combinations(ids, 2):
            a, b = docs[x], docs[y]
            allowed = a.at is not None and b.at is not None and abs(a.at - b.at) <= window
            linked = members[x] == members[y]
            in_window += allowed
            together += allowed and linked
            if not linked:
                missed.append((x, y, allowed))
    wrong = [sorted(ids) for ids in {tuple(m) for m in members.values()}
             if len({stories[i] for i in ids}) > 1]
    report.update(window_pairs=in_window,
                  window_pair_recall=together / in_window if in_window else 1.0,
                  missed=missed, impure=wrong, docs=docs, members=members)
    return report
