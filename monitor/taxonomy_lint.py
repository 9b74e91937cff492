"""Checks of a taxonomy that parsing cannot make: repeated terms and over-reaching wildcards.

Parsing refuses what cannot work (an unknown parent, an empty list); these findings are rules that
work but probably not as their editor meant. Both checks are pure: the taxonomy and, for
wildcards, labelled or reviewed items in, findings out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from monitor.language import normalise
from monitor.tagging import matcher_for
from monitor.taxonomy import Category, Taxonomy


@dataclass(frozen=True)
class Finding:
    where: str  # "regions.lampedusa terms.it"
    message: str


def _where(category: Category, list_name: str, lang: str) -> str:
    table = ("tagging.relevance" if category.kind == "relevance"
             else f"{category.kind}s.{category.slug}")
    return f"{table} {list_name}.{lang}"


def repeated_terms(taxonomy: Taxonomy) -> list[Finding]:
    """A term listed twice in one category's terms, or in both its terms and its not-terms."""
    findings = []
    for category in taxonomy.categories():
        seen: dict[tuple, tuple[str, str]] = {}
        for list_name, terms in (("terms", category.terms), ("not", category.not_terms)):
            for term in terms:
                # spellings that fold to one key ("Białowieża", "Bialowieza") are variants the
                # matcher counts once; only the same text twice, or a term that is also a
                # not-term, is an editing slip
                key = (term.lang, term.key, term.prefix, term.words)
                first = seen.get(key)
                if first is None:
                    seen[key] = (list_name, term.text)
                elif first[0] != list_name:
                    findings.append(Finding(_where(category, list_name, term.lang),
                                            f"{term.text!r} is in both {first[0]} and {list_name}"))
                elif first[1] == term.text:
                    findings.append(Finding(_where(category, list_name, term.lang),
                                            f"{term.text!r} is listed twice"))
    return findings


def _vocabulary_without_lists(taxonomy: Taxonomy, examples: list[dict]) -> dict[str, Counter]:
    """Words of the items in a language with no term lists: the tagger applies every list there."""
    matcher = matcher_for(taxonomy)
    words: dict[str, Counter] = defaultdict(Counter)
    for example in examples:
        lang = str(example.get("lang") or "") or None
        if matcher.languages_for(lang) is not None:
            continue
        text = " ".join(str(example.get(k) or "") for k in ("title", "lede", "text"))
        words[lang or "unknown"].update(normalise(text).split())
    return words


def _wildcards(taxonomy: Taxonomy):
    for category in taxonomy.categories():
        for list_name, terms in (("terms", category.terms), ("not", category.not_terms)):
            for term in terms:
                if term.prefix and not term.words:
                    yield category, list_name, term


def foreign_wildcard_matches(taxonomy: Taxonomy, examples: list[dict],
                             shown: int = 5) -> list[Finding]:
    """Wildcards that match words of items in a language with no term lists of its own.

    Such items (Portuguese, Romanian, an undetected language) are matched against every
    language's lists, and matching folds diacritics, so a stem can meet an ordinary word with
    another meaning. Many are cognates ("migrant*" and Romanian "migranti"); the list is for an
    editor to judge. Language-neutral terms ("any") are meant for every language and not listed.
    """
    vocabulary = _vocabulary_without_lists(taxonomy, examples)
    findings = []
    for category, list_name, term in _wildcards(taxonomy):
        if term.lang == "any":
            continue
        foreign: Counter = Counter()
        for lang, words in vocabulary.items():
            for word, count in words.items():
                if word.startswith(term.key):
                    foreign[f"{word} ({lang})"] += count
        if foreign:
            listed = ", ".join(f"{w} x{n}" for w, n in foreign.most_common(shown))
            more = f" and {len(foreign) - shown} more" if len(foreign) > shown else ""
            findings.append(Finding(_where(category, list_name, term.lang),
                                    f"{term.text!r} also matches {listed}{more}"))
    return findings
