"""Taxonomy -> one compiled Aho-Corasick automaton -> relevance, region and topic tags with evidence.

The top half is pure (text in, tags out). The bottom half applies it to stored items:
`process_items` (called by ingest after each committed batch), `retag_all` and `explain`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick

from monitor.language import clean, detect_language, normalise
from monitor.taxonomy import Category, Taxonomy

FIELDS = ("title", "summary", "text")
_SERBO_CROATIAN = frozenset({"hr", "bs", "sr"})
_LEDE_CHARS = 400  # with no summary, the start of the text is the lede
_MARK = "0fieldmark0"


# Actions stored per automaton pattern (plain tuples: the scan touches them for every match).
_TERM, _NOT, _AND, _SEQ = 0, 1, 2, 3
#   (_TERM, category, weight, term, lang, pattern length)
#   (_NOT,  category, term, pattern length)
#   (_AND,  category, group, part, term, group has `near`, pattern length)
#   (_SEQ,  sequence, anchor word, pattern length)


@dataclass(slots=True)
class Tag:
    kind: str
    slug: str
    score: float
    evidence: list[dict]


@dataclass(slots=True)
class TagResult:
    relevant: bool
    relevance_score: float
    relevance_evidence: list[dict]
    tags: list[Tag] = field(default_factory=list)
    suppressed: list[dict] = field(default_factory=list)  # for explain: what a NOT-group vetoed

    def slugs(self, kind: str) -> set[str]:
        return {t.slug for t in self.tags if t.kind == kind}


class Matcher:
    """All terms of all categories in one automaton; texts are scanned once per field."""

    def __init__(self, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self.settings = taxonomy.settings
        self.categories: list[Category] = taxonomy.categories()
        self.term_languages = frozenset(
            t.lang for c in self.categories for t in c.terms if t.lang != "any")
        patterns: dict[str, list[tuple[str, tuple]]] = {}
        # Sequence terms ("polityk* migracyjn*"): only their longest word is a pattern (the anchor);
        # a match of it checks the words around. Short inner words ("a", "de") then cost nothing.
        # Each is (action recorded when the sequence matches, its words, the anchor's index).
        self.sequences: list[tuple[tuple, tuple[tuple[str, bool], ...], int]] = []

        def add(term, action, lang):
            if term.words:
                seq = len(self.sequences)
                words = term.words
                anchor = max(range(len(words)), key=lambda i: (len(words[i][0]), not words[i][1]))
                self.sequences.append((action, words, anchor))
                word, prefix = words[anchor]
                key = " " + word + ("" if prefix else " ")
                patterns.setdefault(key, []).append((lang, (_SEQ, seq, anchor, len(key))))
                return
            key = " " + term.key + ("" if term.prefix else " ")
            patterns.setdefault(key, []).append((lang, (*action, len(key))))

        for ci, cat in enumerate(self.categories):
            for term in cat.terms:
                add(term, (_TERM, ci, term.weight, term.text, term.lang), term.lang)
            for term in cat.not_terms:
                add(term, (_NOT, ci, term.text), term.lang)
            for gi, group in enumerate(cat.and_groups):
                for pi, part in enumerate(group.parts):
                    for term in part:
                        add(term, (_AND, ci, gi, pi, term.text, group.near is not None), term.lang)
        self.automaton = ahocorasick.Automaton()
        self._patterns: list[list[tuple[str, tuple]]] = []
        # A trie node's children are searched in the order they were added: adding the patterns
        # sorted by how common their letters are puts the usual next letter first.
        for key in sorted(patterns, key=_letter_ranks):
            self.automaton.add_word(key, len(self._patterns))
            self._patterns.append(patterns[key])
        self.pattern_count = len(patterns)
        if patterns:
            self.automaton.make_automaton()
        # per set of item languages: pattern id -> the actions that apply (None when none do)
        self._tables: dict[frozenset[str] | None, list[tuple | None]] = {}
        self.factors = {"title": self.settings.title_factor, "summary": self.settings.summary_factor,
                        "text": self.settings.text_factor}
        self._factors = tuple(self.factors[f] for f in FIELDS)
        self._tables_by_kind = {"region": taxonomy.regions, "topic": taxonomy.topics}
        self._ancestors = {(kind, slug): tuple(taxonomy.ancestors(kind, slug))
                           for kind, table in self._tables_by_kind.items() for slug in table}

    def languages_for(self, language: str | None) -> frozenset[str] | None:
        """Languages whose terms apply to an item; None means all (unknown or uncovered language)."""
        if language in _SERBO_CROATIAN and self.term_languages & _SERBO_CROATIAN:
            return _SERBO_CROATIAN
        if not language or language not in self.term_languages:
            return None
        return frozenset({language})

    def _table(self, langs: frozenset[str] | None) -> list[tuple | None]:
        table = self._tables.get(langs)
        if table is None:
            table = self._tables[langs] = [
                tuple(action for lang, action in entries
                      if lang == "any" or langs is None or lang in langs) or None
                for entries in self._patterns]
        return table

    def fields(self, title: str | None, summary: str | None, text: str | None) -> dict[str, str]:
        """Normalised, padded fields; the text is cut to the configured length before any work."""
        return dict(zip(FIELDS, self._fields(title, summary, text), strict=True))

    def _fields(self, title: str | None, summary: str | None,
                text: str | None) -> tuple[str, str, str]:
        limit = self.settings.text_chars
        text = (text or "")[: limit + 200]
        summary = (summary or "")[: limit + 200]
        if not summary.strip():
            summary, text = text[:_LEDE_CHARS], text[_LEDE_CHARS:limit]
        else:
            text = text[:limit]
        title = (title or "")[:2000]
        # One normalisation pass over the three fields joined by a marker word (fewer calls);
        # if markup happened to swallow a marker, normalise them one by one.
        parts = normalise(f"{title} {_MARK} {summary} {_MARK} {text}").split(_MARK)
        if len(parts) != 3:
            parts = [normalise(title), normalise(summary), normalise(text)]
        return (" " + parts[0].strip() + " ", " " + parts[1].strip() + " ",
                " " + parts[2].strip() + " ")

    def tag(self, title: str | None, summary: str | None = None, text: str | None = None,
            language: str | None = None, source_regions: Iterable[str] = (),
            source_topics: Iterable[str] = (), explain: bool = False,
            home: tuple[str, str] | None = None, source_relevant: bool = False) -> TagResult:
        """Tags and relevance of one item. Without `explain`, an item found not relevant (most
        items) is decided on its relevance alone and its TagResult.suppressed stays empty; with
        it, every category is weighed so that suppressed says what a NOT-group or a rule dropped,
        the relevance included. Tags and relevance are the same either way.

        `home` is (region, domain) of the outlet's country (TaggingSettings.home_region_of): the
        region of a relevant item that no rule places anywhere. `source_relevant`: the item's
        source is about migration whatever the item's words (a source's `relevant = true`)."""
        ftexts = self._fields(title, summary, text)
        table = self._table(self.languages_for(language))
        scan = self.automaton.iter
        # term hits (category, field, start, weight, term, lang) in text order; NOT hits per
        # category; AND-part hits (field, word, term) per (category, group, part)
        term_hits: list[tuple] = []
        nots: dict[int, list[dict]] = {}
        parts: dict[tuple[int, int], dict[int, list[tuple[int, int, str]]]] = {}
        seq_found: dict[int, dict[int, int]] = {}  # sequence -> field -> first word it starts at
        for fi in range(3):
            ftext = ftexts[fi]
            if len(ftext) <= 2:
                continue
            tokens = None
            for end, pid in scan(ftext):
                actions = table[pid]
                if actions is None:
                    continue
                for a in actions:
                    kind = a[0]
                    if kind == _TERM:
                        term_hits.append((a[1], fi, end - a[5] + 1, a[2], a[3], a[4]))
                    elif kind == _SEQ:
                        _, seq, anchor, length = a
                        # word index = spaces before the pattern's leading space (counted in C)
                        first = ftext.count(" ", 0, end - length + 1) - anchor
                        found = seq_found.get(seq)
                        if first < 0 or (found is not None and found.get(fi, first) <= first):
                            continue
                        if tokens is None:
                            tokens = ftext.split()
                        words = self.sequences[seq][1]
                        if first + len(words) > len(tokens):
                            continue
                        for k, (word, prefix) in enumerate(words):
                            tok = tokens[first + k]
                            if not (tok.startswith(word) if prefix else tok == word):
                                break
                        else:
                            seq_found.setdefault(seq, {})[fi] = first
                    elif kind == _AND:
                        key = (a[1], a[2])
                        hit = (fi, ftext.count(" ", 0, end) if a[5] else 0, a[4])
                        group_parts = parts.get(key)
                        if group_parts is None:
                            parts[key] = {a[3]: [hit]}
                        else:
                            hits = group_parts.get(a[3])
                            if hits is None:
                                group_parts[a[3]] = [hit]
                            else:
                                hits.append(hit)
                    else:
                        nots.setdefault(a[1], []).append({"term": a[2], "field": FIELDS[fi]})
        for seq, by_field in seq_found.items():
            action = self.sequences[seq][0]
            for fi in sorted(by_field):
                w = by_field[fi]
                kind = action[0]
                if kind == _AND:
                    parts.setdefault(action[1:3], {}).setdefault(action[3], []).append(
                        (fi, w, action[4]))
                elif kind == _NOT:
                    nots.setdefault(action[1], []).append({"term": action[2], "field": FIELDS[fi]})
                else:
                    # where it counts: the leading space of word w, as for a plain term there
                    # (so that a phrase and a sequence starting at the same word count once)
                    ftext, start = ftexts[fi], 0
                    for _ in range(w):
                        start = ftext.index(" ", start + 1)
                    term_hits.append((action[1], fi, start, action[2], action[3], action[4]))
        return self._decide(term_hits, nots, parts, source_regions, source_topics, explain, home,
                            source_relevant)

    def _decide(self, term_hits, nots, parts, source_regions, source_topics,
                explain: bool, home: tuple[str, str] | None = None,
                source_relevant: bool = False) -> TagResult:
        categories = self.categories
        by_cat: dict[int, list[tuple]] = {}
        for h in term_hits:
            hits = by_cat.get(h[0])
            if hits is None:
                by_cat[h[0]] = [h]
            else:
                hits.append(h)
        relevance = self.taxonomy.relevance
        if relevance is not None and not explain and not source_relevant:
            # Most items are not about migration at all: decide relevance first and stop there.
            rel_index = len(categories) - 1
            hits_list = by_cat.get(rel_index)
            rel_scores = self._term_scores({rel_index: hits_list} if hits_list else {})
            self._add_and_groups(rel_scores, {k: v for k, v in parts.items() if k[0] == rel_index})
            entry = rel_scores.get(rel_index)
            if entry is None or not self._passes(rel_index, entry, nots):
                return TagResult(relevant=False,
                                 relevance_score=round(entry[0], 2) if entry is not None else 0.0,
                                 relevance_evidence=_evidence(entry, unsorted=True)
                                 if entry is not None else [])
        scores = self._term_scores(by_cat)
        self._add_and_groups(scores, parts)
        return self._verdicts(scores, nots, source_regions, source_topics, home, source_relevant)

    def _passes(self, ci: int, entry: list, nots: dict) -> bool:
        """Whether a category's score gives it (as _verdicts decides, before `unless` and region
        dominance, which never apply to relevance)."""
        cat = self.categories[ci]
        score, lede = entry[0], entry[3]
        return not (score < cat.threshold or ci in nots
                    or (cat.focus and not lede and score < 2 * cat.threshold))

    def _term_scores(self, by_cat: dict[int, list[tuple]]) -> dict[int, list]:
        """Per category: [score, {(term, lang): [factor, count, field, weight]}, AND evidence,
        whether a positive term is in the title or summary]."""
        factors = self._factors
        # Each place in the text counts once per category: where several terms start at the same
        # word ("prihvatn*" and "prihvatni centar"), only the heaviest one counts.
        scores: dict[int, list] = {}
        for ci, hits_list in by_cat.items():
            if len(hits_list) == 1:  # the usual case: one term, once
                _c, fi, _pos, weight, term, lang = hits_list[0]
                factor = factors[fi]
                scores[ci] = [0.0 + (weight * factor + (weight * 0.0 if weight > 0 else 0)),
                              {(term, lang): [factor, 1, fi, weight]}, None,
                              weight > 0 and fi != 2]
                continue
            per_term: dict[tuple[str, str], list] = {}
            hits_list.sort(key=_neg_weight)
            claimed: set[tuple[int, int]] = set()
            for _c, fi, pos, weight, term, lang in hits_list:
                if (fi, pos) in claimed:
                    continue
                claimed.add((fi, pos))
                h = per_term.get((term, lang))
                factor = factors[fi]
                if h is None:
                    per_term[(term, lang)] = [factor, 1, fi, weight]
                else:
                    h[1] += 1
                    if factor > h[0]:
                        h[0], h[2] = factor, fi
            score, lede = 0.0, False
            for factor, count, fi, weight in per_term.values():
                score += weight * factor + (weight * 0.5 * min(count - 1, 4) if weight > 0 else 0)
                if weight > 0 and fi != 2:
                    lede = True
            scores[ci] = [score, per_term, None, lede]
        return scores

    def _add_and_groups(self, scores: dict[int, list], parts: dict) -> None:
        """Add the AND-groups whose every part matched to their category's score."""
        factors = self._factors
        categories = self.categories
        for (ci, gi), group_parts in parts.items():
            group = categories[ci].and_groups[gi]
            if len(group_parts) < len(group.parts):
                continue
            found = [group_parts[pi] for pi in range(len(group.parts))]
            match = _and_match(found, group.near)
            if match is None:
                continue
            fi, matched_terms = match
            entry = scores.get(ci)
            if entry is None:
                entry = scores[ci] = [0.0, {}, None, False]
            entry[0] += group.weight * factors[fi]
            evidence = {"term": " + ".join(matched_terms), "field": FIELDS[fi],
                        "weight": group.weight,
                        "rule": "and" + (f" within {group.near} words" if group.near else "")}
            if entry[2] is None:
                entry[2] = [evidence]
            else:
                entry[2].append(evidence)
            entry[3] = entry[3] or (fi != 2 and group.weight > 0)

    def _verdicts(self, scores: dict[int, list], nots: dict, source_regions,
                  source_topics, home: tuple[str, str] | None = None,
                  source_relevant: bool = False) -> TagResult:
        categories = self.categories
        result_cats: dict[int, float] = {}
        suppressed = []
        for ci, (score, _t, _a, lede) in scores.items():
            cat = categories[ci]
            if score < cat.threshold:
                continue
            if ci in nots:
                suppressed.append({"kind": cat.kind, "tag": cat.slug, "score": round(score, 2),
                                   "vetoed_by": nots[ci]})
                continue
            if cat.focus and not lede and score < 2 * cat.threshold:
                suppressed.append({"kind": cat.kind, "tag": cat.slug, "score": round(score, 2),
                                   "reason": "only mentioned in the body text"})
                continue
            result_cats[ci] = score

        with_unless = [ci for ci in result_cats if categories[ci].unless]
        if with_unless:
            blocked = _blocked_by_unless(
                {(categories[ci].kind, categories[ci].slug): categories[ci].unless
                 for ci in result_cats})
            for ci in with_unless:
                cat = categories[ci]
                blockers = blocked.get((cat.kind, cat.slug))
                if blockers:
                    suppressed.append({"kind": cat.kind, "tag": cat.slug,
                                       "score": round(result_cats[ci], 2),
                                       "reason": f"not given together with {', '.join(blockers)}"})
                    del result_cats[ci]

        # A region only when the item is chiefly about it: drop regions far weaker than the best
        # other place. A region's parent or child is the same place seen wider or closer, so it
        # never outweighs it (Lampedusa is not "much weaker" than a strong central-med). A region
        # with a dominance_weight below 1 (the EU: Frontex, the Commission) weighs less against
        # a place, since an EU act at a border still happens at that border.
        region_scores = {ci: sc for ci, sc in result_cats.items()
                         if categories[ci].kind == "region"}
        if len(region_scores) > 1:
            ancestors = {ci: self.taxonomy.ancestors("region", categories[ci].slug)
                         for ci in region_scores}
            for ci, sc in region_scores.items():
                slug = categories[ci].slug
                best = max((s2 * categories[c2].dominance_weight
                            for c2, s2 in region_scores.items() if c2 != ci
                            and categories[c2].slug not in ancestors[ci]
                            and slug not in ancestors[c2]), default=0.0)
                if sc < self.settings.region_dominance * best:
                    cat = categories[ci]
                    suppressed.append({"kind": "region", "tag": cat.slug, "score": round(sc, 2),
                                       "reason": f"much weaker than the item's main region ({best:g})"})
                    del result_cats[ci]

        relevance = self.taxonomy.relevance
        if relevance is not None:
            rel_index = len(categories) - 1
            entry = scores.get(rel_index)
            rel_score = entry[0] if entry is not None else 0.0
            rel_evidence = _evidence(entry, unsorted=True) if entry is not None else []
            relevant = rel_index in result_cats
            if source_relevant and not relevant:
                relevant = True
                rel_evidence = [*rel_evidence, {"term": "source default", "field": "source",
                                                "weight": 0, "count": 1}]
        else:
            relevant = any(categories[ci].kind == "topic" for ci in result_cats)
            rel_score, rel_evidence = (1.0 if relevant else 0.0), []
        result = TagResult(relevant=relevant, relevance_score=round(rel_score, 2),
                           relevance_evidence=rel_evidence, suppressed=suppressed)
        if not relevant:
            return result
        chosen: dict[tuple[str, str], Tag] = {}
        for ci, score in result_cats.items():
            cat = categories[ci]
            if cat.kind != "relevance":
                chosen[(cat.kind, cat.slug)] = Tag(cat.kind, cat.slug, round(score, 2),
                                                   _evidence(scores[ci]))
        tables = self._tables_by_kind
        for kind, slugs in (("region", source_regions), ("topic", source_topics)):
            for slug in slugs:
                if slug in tables[kind] and (kind, slug) not in chosen:
                    chosen[(kind, slug)] = Tag(kind, slug, tables[kind][slug].threshold,
                                               [{"term": "source default", "field": "source",
                                                 "weight": 0}])
        if home is not None and home[0] in tables["region"] and not any(
                kind == "region" for kind, _ in chosen):
            # a Belgian outlet's item on "the reception crisis" names no country: it is Belgium's
            chosen[("region", home[0])] = Tag("region", home[0],
                                              tables["region"][home[0]].threshold,
                                              [{"term": f".{home[1]}", "field": "home",
                                                "weight": 0}])
        ancestors = self._ancestors
        for (kind, slug), tag in list(chosen.items()):
            for parent in ancestors[(kind, slug)]:
                existing = chosen.get((kind, parent))
                if existing is None:
                    chosen[(kind, parent)] = Tag(kind, parent, tag.score,
                                                 [{"term": f"within {parent}", "field": "implied",
                                                   "weight": 0, "implied_by": slug}])
                elif existing.score < tag.score:
                    existing.score = tag.score
        result.tags = sorted(chosen.values(), key=lambda t: (t.kind, -t.score, t.slug))
        return result


def _blocked_by_unless(given: dict[tuple[str, str], tuple[str, ...]]) -> dict[tuple[str, str], list[str]]:
    """(kind, slug) -> the given slugs that drop it. Only a slug that is itself kept drops another:
    rescue `unless` externalisation is kept when externalisation is dropped by relocation."""
    kept: dict[tuple[str, str], bool] = {}
    blocked: dict[tuple[str, str], list[str]] = {}

    def keeps(key: tuple[str, str]) -> bool:
        if key not in kept:
            kept[key] = True  # a cycle of `unless` counts as kept (no category drops itself)
            blockers = [u for u in given[key] if (key[0], u) in given and keeps((key[0], u))]
            if blockers:
                blocked[key] = blockers
            kept[key] = not blockers
        return kept[key]

    for key in given:
        keeps(key)
    return blocked


_COMMON_LETTERS = {c: i for i, c in enumerate(" eaionrtslcdumphgbfvkzwyjxq0123456789")}


def _letter_ranks(key: str) -> list[int]:
    return [_COMMON_LETTERS.get(c, 100 + ord(c)) for c in key]


def _neg_weight(hit: tuple) -> float:
    return -hit[3]


def _evidence(entry: list, unsorted: bool = False) -> list[dict]:
    """Evidence of a category's score (built only for the categories that are shown)."""
    _score, per_term, and_evidence, _lede = entry
    evidence = [{"term": term, "field": FIELDS[fi], "weight": weight, "lang": lang, "count": count}
                for (term, lang), (_factor, count, fi, weight) in per_term.items()]
    if and_evidence:
        evidence.extend(and_evidence)
    if unsorted:
        return evidence
    return sorted(evidence, key=lambda e: -e["weight"])


def _and_match(found: list[list[tuple[int, int, str]]], near: int | None):
    """(field index, terms) when every part matched (in one field within `near` words, if set)."""
    if near is None:
        best = {}
        for hits in found:
            fi, _w, term = min(hits, key=_field_of)
            best[term] = fi
        return max(best.values()), list(best)
    for fi in range(3):
        per_part = [[(w, t) for f, w, t in hits if f == fi] for hits in found]
        if not all(per_part):
            continue
        for w0, t0 in per_part[0]:
            chosen = [t0]
            for other in per_part[1:]:
                close = [t for w, t in other if abs(w - w0) <= near]
                if not close:
                    break
                chosen.append(close[0])
            else:
                return fi, chosen
    return None


def _field_of(hit: tuple) -> int:
    return hit[0]


_MATCHERS: weakref.WeakKeyDictionary[Taxonomy, Matcher] = weakref.WeakKeyDictionary()


def matcher_for(taxonomy: Taxonomy) -> Matcher:
    """The compiled matcher, built once per taxonomy object (i.e. once per process and config)."""
    matcher = _MATCHERS.get(taxonomy)
    if matcher is None:
        matcher = _MATCHERS[taxonomy] = Matcher(taxonomy)
    return matcher


# -- evaluation (pure) ----------------------------------------------------------------------------

# -- stored items ---------------------------------------------------------------------------------

_ITEM_SQL = """SELECT id, source, url, title, summary, substr(text, 1, ?) AS text, language,
                      declared_language, published, fetched_at, full_text, tagged_at,
                      language AS stored_language, relevant AS stored_relevant
               FROM items WHERE id IN ({marks})"""


def _source_defaults(config, name: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """A source's default regions and topics, and whether all its items are relevant."""
    try:
        source = config.source(name)
    except KeyError:
        return (), (), False
    return source.regions, source.topics, source.relevant


def _load(db, config, item_ids: list[int]) -> list[dict]:
    rows = []
    limit = config.taxonomy.settings.text_chars + 600
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        sql = _ITEM_SQL.format(marks=",".join("?" * len(chunk)))
        cursor = db.execute(sql, [limit, *chunk])
        names = [d[0] for d in cursor.description]
        rows.extend(dict(zip(names, r, strict=True)) for r in cursor.fetchall())
    from monitor.tag_reviews import latest_reviews

    reviews = latest_reviews(db, [row["id"] for row in rows]) if rows else {}
    for row in rows:
        row["review"] = reviews.get(row["id"])
    return rows


def _tag_rows(config, rows: list[dict], redetect: bool) -> list[tuple[dict, TagResult]]:
    """Each row tagged by the taxonomy, or as its latest review says where a curator reviewed it."""
    from monitor.tag_reviews import apply_review

    matcher = matcher_for(config.taxonomy)
    settings = config.taxonomy.settings
    languages = settings.languages
    out = []
    defaults: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}
    for row in rows:
        if redetect or not row["language"] or row["tagged_at"] is None:
            sample = " ".join(clean(x)[:600] for x in (row["title"], row["summary"], row["text"]) if x)
            row["language"] = detect_language(sample, row["declared_language"], languages)
        source = row["source"]
        if source not in defaults:
            defaults[source] = _source_defaults(config, source)
        regions, topics, relevant = defaults[source]
        result = matcher.tag(row["title"], row["summary"], row["text"], row["language"],
                             regions, topics, home=settings.home_region_of(row["url"]),
                             source_relevant=relevant)
        out.append((row, apply_review(result, row.get("review"), config.taxonomy)))
    return out


def _tag_rows_of(tagged: list[tuple[dict, TagResult]]) -> dict[int, list[tuple]]:
    """item id -> its item_tags rows (kind, tag, score, evidence JSON), in the stored order."""
    return {row["id"]: sorted((t.kind, t.slug, t.score, json.dumps(t.evidence, ensure_ascii=False))
                              for t in res.tags)
            for row, res in tagged}


def _write_tags(db, verdicts: list[tuple[int, str | None, bool]], now: str,
                rows: dict[int, list[tuple]]) -> None:
    """Store items' (id, language, relevant) and their item_tags rows (from _tag_rows_of)."""
    ids = [item_id for item_id, _, _ in verdicts]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        db.execute(f"DELETE FROM item_tags WHERE item_id IN ({','.join('?' * len(chunk))})", chunk)
    db.conn.executemany("UPDATE items SET language = ?, relevant = ?, tagged_at = ? WHERE id = ?",
                        [(language, int(relevant), now, item_id)
                         for item_id, language, relevant in verdicts])
    db.conn.executemany(
        "INSERT INTO item_tags (item_id, kind, tag, score, evidence) VALUES (?, ?, ?, ?, ?)",
        [(item_id, *tag) for item_id in ids for tag in rows[item_id]])


def _verdicts(tagged: list[tuple[dict, TagResult]]) -> list[tuple[int, str | None, bool]]:
    return [(row["id"], row["language"], res.relevant) for row, res in tagged]


def _changed(db, tagged: list[tuple[dict, TagResult]]
             ) -> tuple[list[tuple[dict, TagResult]], dict[int, list[tuple]]]:
    """The tagged rows whose language, relevance or tags differ from what is stored (or that were
    never tagged), with their new item_tags rows: a retag writes only those."""
    ids = [row["id"] for row, _ in tagged]
    stored: dict[int, list[tuple]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for item_id, *tag in db.execute(
                f"""SELECT item_id, kind, tag, score, evidence FROM item_tags
                    WHERE item_id IN ({','.join('?' * len(chunk))})""", chunk):
            stored[item_id].append(tuple(tag))
    new = _tag_rows_of(tagged)
    changed = [(row, res) for row, res in tagged
               if row["tagged_at"] is None or row["language"] != row["stored_language"]
               or row["stored_relevant"] != int(res.relevant)
               or sorted(stored[row["id"]]) != new[row["id"]]]
    return changed, new


def process_items(db, config, item_ids: list[int]) -> None:
    """Language, relevance, tags and story cluster for freshly stored items (one transaction)."""
    from monitor import cluster_store, clustering
    from monitor.store import now_iso, transaction

    item_ids = sorted({int(i) for i in item_ids})
    if not item_ids:
        return
    rows = _load(db, config, item_ids)
    tagged = _tag_rows(config, rows, redetect=False)
    docs = clustering.docs_from_rows(tagged)
    with transaction(db):
        _write_tags(db, _verdicts(tagged), now_iso(), _tag_rows_of(tagged))
        cluster_store.assign_clusters(db, config.taxonomy.settings, docs)


def retag_items(db, config, item_ids: list[int]) -> None:
    """Tag these stored items again (after a review of their tags); their story clusters stay
    until the next `monitor retag`. The caller holds the transaction."""
    from monitor.store import now_iso

    rows = _load(db, config, sorted({int(i) for i in item_ids}))
    tagged = _tag_rows(config, rows, redetect=False)
    _write_tags(db, _verdicts(tagged), now_iso(), _tag_rows_of(tagged))


@dataclass
class RetagStats:
    items: int = 0
    relevant: int = 0
    tags: int = 0
    clusters: int = 0
    multi_item_clusters: int = 0
    seconds: float = 0.0


def retag_all(db, config, progress: Callable[[int, int], None] | None = None,
              batch: int = 2000, redetect_language: bool = False,
              processes: int | None = None) -> RetagStats:
    """Re-tag the whole archive with the current taxonomy, then rebuild every story cluster.

    Only what changed is written: items whose language, relevance or tags differ, and the
    cluster rows that differ (a second retag with the same taxonomy writes nothing). Batches are
    read, tagged and compared with what is stored by `processes` worker processes, each with its
    own read-only connection (by default every core for a large archive: monitor.parallel);
    writing and linking the stories stay in this process. A batch's rows are written only by
    this process, after its worker has read them.
    """
    import time

    from monitor import cluster_store, parallel
    from monitor.store import now_iso, transaction

    started = time.perf_counter()
    stats = RetagStats()
    # In (date, id) order, the order stories are linked in: each batch is linked as it arrives,
    # while the workers tag the next ones (a batch out of that order, say a date stored in
    # another format, makes the linking wait for all of them, with the same result).
    ids = [r[0] for r in db.execute(
        "SELECT id FROM items ORDER BY coalesce(published, fetched_at), id").fetchall()]
    total = len(ids)
    now = now_iso()
    docs = []
    stamps: dict[int, str | None] = {}
    database = db.execute("PRAGMA database_list").fetchone()[2]  # "" for an in-memory database
    processes = parallel.processes_for(total, processes) if database else 1
    stored = cluster_store.stored_fingerprint_rows(db)
    linker = cluster_store.recent_keys_linker(config.taxonomy.settings, capacity=total)
    batches = (ids[start:start + batch] for start in range(0, total, batch))
    for verdicts, tag_rows, batch_docs, batch_stamps, relevant, tags in parallel.ordered_map(
            _retag_batch, batches, state=(config, redetect_language, db, stored),
            setup=_retag_setup,
            setup_args=(str(Path(config.path).resolve()), _config_digest(config),
                        redetect_language, database),
            processes=processes):
        if verdicts:
            with transaction(db):
                _write_tags(db, verdicts, now, tag_rows)
        stats.relevant += relevant
        stats.tags += tags
        stamps.update(batch_stamps)
        docs.extend(batch_docs)
        linker.add(batch_docs)
        stats.items += len(batch_stamps)
        if progress:
            progress(stats.items, total)
    with transaction(db):
        stats.clusters, stats.multi_item_clusters = cluster_store.rebuild_clusters(
            db, config.taxonomy.settings, docs, stored=stored, stamps=stamps, linked=linker)
    stats.seconds = time.perf_counter() - started
    return stats


def _config_digest(config) -> str:
    return hashlib.sha256(pickle.dumps(config.raw)).hexdigest()


def _retag_setup(config_path: str, digest: str, redetect_language: bool, database: str) -> tuple:
    """A retag worker's state: the retag's config, read again from its file (it is too large to
    send to a starting worker), and a read-only connection to the archive. A config file
    changed since is refused: the worker stops and its batches are done by the retag's own
    process, with the retag's config."""
    import sqlite3

    from monitor.config import load_config
    from monitor.errors import ConfigError

    config = load_config(config_path)
    if _config_digest(config) != digest:
        raise ConfigError(Path(config_path), "", "the file changed while a retag was running")
    db = sqlite3.connect(f"{Path(database).as_uri()}?mode=ro", uri=True)
    return config, redetect_language, db, None


def _retag_batch(state: tuple, ids: list[int]) -> tuple:
    """One batch of a retag: its items read, tagged and compared with what is stored. Returns
    what changed (verdicts and item_tags rows), the story docs (from the stored fingerprints where
    the text is unchanged), each item's date, and the batch's relevant and tag counts."""
    from monitor import cluster_store, clustering

    config, redetect_language, db, stored = state
    rows = _load(db, config, ids)
    tagged = _tag_rows(config, rows, redetect=redetect_language)
    changed, tag_rows = _changed(db, tagged)
    known = (cluster_store.fingerprints_of(stored, ids) if stored is not None
             else cluster_store.stored_fingerprints(db, ids))
    return (_verdicts(changed), {row["id"]: tag_rows[row["id"]] for row, _ in changed},
            clustering.docs_from_rows(tagged, known),
            {row["id"]: row["published"] or row["fetched_at"] for row in rows},
            sum(res.relevant for _, res in tagged), sum(len(res.tags) for _, res in tagged))


def explain(db, config, item_id: int) -> dict | None:
    """What the desk shows for one item: stored tags with evidence, relevance, and its cluster."""
    from monitor import cluster_store

    rows = _load(db, config, [item_id])
    if not rows:
        return None
    row = rows[0]
    regions, topics, relevant = _source_defaults(config, row["source"])
    from monitor.tag_reviews import apply_review, history

    live = apply_review(matcher_for(config.taxonomy).tag(
        row["title"], row["summary"], row["text"], row["language"], regions, topics,
        explain=True, home=config.taxonomy.settings.home_region_of(row["url"]),
        source_relevant=relevant),
        row["review"], config.taxonomy)
    stored = db.execute("SELECT relevant, cluster_id, tagged_at FROM items WHERE id = ?",
                        [item_id]).fetchone()
    tags = []
    for kind, tag, score, evidence in db.execute(
            "SELECT kind, tag, score, evidence FROM item_tags WHERE item_id = ? "
            "ORDER BY kind, score DESC, tag", [item_id]):
        table = config.taxonomy.regions if kind == "region" else config.taxonomy.topics
        label = table[tag].label if tag in table else tag
        tags.append({"kind": kind, "tag": tag, "label": label, "score": score,
                     "evidence": json.loads(evidence)})
    return {
        "id": row["id"], "title": row["title"], "source": row["source"],
        "language": row["language"], "declared_language": row["declared_language"],
        "relevant": None if stored[0] is None else bool(stored[0]),
        "relevance": {"score": live.relevance_score,
                      "threshold": config.taxonomy.relevance.threshold if config.taxonomy.relevance else None,
                      "evidence": live.relevance_evidence},
        "tagged_at": stored[2],
        "tags": tags,
        "suppressed": live.suppressed,
        "reviews": [r.as_dict() for r in history(db, item_id)],  # the latest first; it applies
        "stale": sorted((t.kind, t.slug) for t in live.tags) != sorted((t["kind"], t["tag"]) for t in tags),
        "cluster": cluster_store.cluster_info(db, stored[1]) if stored[1] is not None else None,
    }
