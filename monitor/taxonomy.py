"""Region and topic taxonomy from config.toml ([regions.*], [topics.*], [tagging]): parsed, validated, pure.

The rule language (EMM-style weighted keyword rules) is described in docs/taxonomy.md. This module
only reads and checks the rules; monitor.tagging compiles them into one Aho-Corasick automaton.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.language import DEFAULT_LANGUAGES, normalise

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LANG = re.compile(r"^([a-z]{2}|any)$")
_WEIGHT = re.compile(r"^(.*?)\s*:\s*(-?\d+(?:\.\d+)?)\s*$")
CATEGORY_KEYS = {"label", "within", "threshold", "terms", "not", "and", "focus", "description",
                 "unless", "dominance_weight"}
TAGGING_KEYS = {"relevance", "languages", "text_chars", "title_factor", "summary_factor",
                "text_factor", "cluster_window_days", "cluster_text_similarity",
                "cluster_anchor_similarity", "region_dominance", "home_regions"}

@dataclass(frozen=True)
class Term:
    """One phrase: `text` as written, `key` normalised, `prefix` when it ended in '*'.

    A phrase with '*' on an inner word ("polityk* migracyjn*") is a sequence: `words` holds each
    word as (normalised, prefix) and they must follow each other in that order.
    """
    text: str
    key: str
    prefix: bool
    weight: float
    lang: str  # ISO 639-1 code, or "any" for language-neutral names
    words: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class AndGroup:
    """Every one of `parts` (each a list of alternative terms) must match; within `near` words if set."""
    parts: tuple[tuple[Term, ...], ...]
    weight: float
    near: int | None
    lang: str


@dataclass(frozen=True)
class Category:
    slug: str
    kind: str  # "region", "topic" or "relevance"
    label: str
    within: str | None = None
    threshold: float = 2.0
    focus: bool = False  # regions: needs a title/lede hit or a strong text score
    terms: tuple[Term, ...] = ()
    not_terms: tuple[Term, ...] = ()
    and_groups: tuple[AndGroup, ...] = ()
    unless: tuple[str, ...] = ()  # not given when one of these (same kind) is given
    # regions: the share of this region's score that counts when another region is weighed
    # against it as the item's main place (see region_dominance)
    dominance_weight: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.slug}"


@dataclass(frozen=True)
class TaggingSettings:
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    text_chars: int = 2000
    title_factor: float = 2.0
    summary_factor: float = 1.5
    text_factor: float = 1.0
    cluster_window_days: float = 7.0
    cluster_text_similarity: float = 0.5
    cluster_anchor_similarity: float = 0.15
    region_dominance: float = 0.5  # a region scoring below this share of the best region is dropped
    # (country-code top-level domain, region slug): a relevant item from an outlet under that
    # domain that no rule places anywhere is about that country's own asylum system
    home_regions: tuple[tuple[str, str], ...] = ()

    def home_region_of(self, url: str | None) -> tuple[str, str] | None:
        """(region slug, top-level domain) for an item's address, or None."""
        if not self.home_regions or not url:
            return None
        host = urlsplit(url).hostname or ""
        tld = host.rsplit(".", 1)[-1] if "." in host else ""
        for domain, slug in self.home_regions:
            if domain == tld:
                return slug, tld
        return None


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """Compared by identity: the compiled matcher is cached per Taxonomy object."""
    regions: dict = field(default_factory=dict)
    topics: dict = field(default_factory=dict)
    relevance: Category | None = None
    settings: TaggingSettings = field(default_factory=TaggingSettings)

    def categories(self) -> list[Category]:
        cats = list(self.regions.values()) + list(self.topics.values())
        if self.relevance is not None:
            cats.append(self.relevance)
        return cats

    def ancestors(self, kind: str, slug: str) -> list[str]:
        table = self.regions if kind == "region" else self.topics
        out = []
        parent = table[slug].within
        while parent:
            out.append(parent)
            parent = table[parent].within
        return out

    def __hash__(self) -> int:
        return id(self)


def parse_term(raw: Any, lang: str, path: Path, key: str) -> Term:
    if not isinstance(raw, str):
        raise ConfigError(path, key, f"each term must be a string, not {raw!r}")
    text, weight = raw.strip(), 1.0
    match = _WEIGHT.match(text)
    if match:
        text, weight = match.group(1).strip(), float(match.group(2))
    prefix = text.endswith("*")
    body = text[:-1] if prefix else text
    norm = normalise(body.replace("*", " "))
    if not norm:
        raise ConfigError(path, key, f"{raw!r} has no letters or digits to match")
    words: list[tuple[str, bool]] = []
    if "*" in body:
        for word in text.split():
            stem = word.rstrip("*")
            if "*" in stem:
                raise ConfigError(path, key, f"{raw!r}: '*' is only allowed at the end of a word")
            tokens = normalise(stem).split()
            words.extend((t, False) for t in tokens[:-1])
            if tokens:
                words.append((tokens[-1], word.endswith("*")))
    for stem, is_prefix in words or [(norm.split()[-1], prefix)]:
        if is_prefix and len(stem) < 3:
            raise ConfigError(path, key, f"{raw!r}: a word ending in '*' needs at least 3 letters")
    return Term(text=text, key=norm, prefix=prefix, weight=weight, lang=lang, words=tuple(words))


def _term_lists(value: Any, path: Path, key: str, allow_missing: bool) -> list[Term]:
    """`terms = {en = [...], any = [...]}` (or a bare list, meaning language-neutral)."""
    if value is None:
        if allow_missing:
            return []
        raise ConfigError(path, key, "is required: give at least one term, e.g. terms.en = [\"...\"]")
    if isinstance(value, list):
        value = {"any": value}
    if not isinstance(value, dict):
        raise ConfigError(path, key, "must be a table of languages to term lists, e.g. en = [\"...\"]")
    if not value and not allow_missing:
        raise ConfigError(path, key, "is empty: give at least one term")
    out = []
    for lang, terms in value.items():
        sub = f"{key}.{lang}"
        if not _LANG.match(lang):
            raise ConfigError(path, sub, f"{lang!r} must be a two-letter ISO 639-1 code or 'any'")
        if not isinstance(terms, list):
            raise ConfigError(path, sub, "must be a list of terms")
        if not terms:
            raise ConfigError(path, sub, "is an empty term list: remove it or add terms")
        for i, raw in enumerate(terms):
            out.append(parse_term(raw, lang, path, f"{sub}[{i}]"))
    return out


def _and_groups(value: Any, path: Path, key: str) -> list[AndGroup]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(path, key, "must be a list of [[...and]] tables")
    groups = []
    for i, table in enumerate(value):
        k = f"{key}[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(path, k, "must be a table with 'all', 'weight', optional 'near' and 'lang'")
        for name in table:
            if name not in {"all", "weight", "near", "lang"}:
                raise ConfigError(path, f"{k}.{name}", "unknown key (known keys: all, lang, near, weight)")
        lang = table.get("lang", "any")
        if not isinstance(lang, str) or not _LANG.match(lang):
            raise ConfigError(path, f"{k}.lang", f"{lang!r} must be a two-letter code or 'any'")
        parts_raw = table.get("all")
        if not isinstance(parts_raw, list) or len(parts_raw) < 2:
            raise ConfigError(path, f"{k}.all", "must list at least two term lists that must all match")
        parts = []
        for j, part in enumerate(parts_raw):
            pk = f"{k}.all[{j}]"
            if isinstance(part, str):
                part = [part]
            if not isinstance(part, list) or not part:
                raise ConfigError(path, pk, "is an empty term list: give at least one term")
            parts.append(tuple(parse_term(t, lang, path, f"{pk}[{n}]") for n, t in enumerate(part)))
        weight = table.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(path, f"{k}.weight", f"must be a number, not {weight!r}")
        near = table.get("near")
        if near is not None and (isinstance(near, bool) or not isinstance(near, int) or near < 1):
            raise ConfigError(path, f"{k}.near", f"must be a whole number of words >= 1, not {near!r}")
        groups.append(AndGroup(parts=tuple(parts), weight=float(weight), near=near, lang=lang))
    return groups


def _number(table: dict, name: str, default: float, path: Path, key: str) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"{key}.{name}", f"must be a number, not {value!r}")
    return float(value)


def _category(slug: str, kind: str, table: Any, path: Path, prefix: str) -> Category:
    key = f"{prefix}.{slug}"
    if not isinstance(table, dict):
        raise ConfigError(path, key, "must be a table")
    if kind != "relevance" and not _SLUG.match(slug):
        raise ConfigError(path, key, f"{slug!r} must be a slug: lowercase letters, digits, - and _")
    for name in table:
        if name not in CATEGORY_KEYS:
            known = ", ".join(sorted(CATEGORY_KEYS))
            raise ConfigError(path, f"{key}.{name}", f"unknown key (known keys: {known})")
    label = table.get("label", slug)
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(path, f"{key}.label", "must be a non-empty string")
    within = table.get("within")
    if within is not None and not isinstance(within, str):
        raise ConfigError(path, f"{key}.within", f"must be the slug of another {kind}")
    terms = _term_lists(table.get("terms"), path, f"{key}.terms", allow_missing=False)
    not_terms = _term_lists(table.get("not"), path, f"{key}.not", allow_missing=True)
    and_groups = _and_groups(table.get("and"), path, f"{key}.and")
    if not any(t.weight > 0 for t in terms) and not any(g.weight > 0 for g in and_groups):
        raise ConfigError(path, f"{key}.terms", "has no term with a positive weight, so it can never match")
    threshold = _number(table, "threshold", 2.0, path, key)
    if threshold <= 0:
        raise ConfigError(path, f"{key}.threshold", "must be greater than zero")
    focus = table.get("focus", kind == "region")
    if not isinstance(focus, bool):
        raise ConfigError(path, f"{key}.focus", "must be true or false")
    unless = table.get("unless", [])
    if not isinstance(unless, list) or not all(isinstance(u, str) for u in unless):
        raise ConfigError(path, f"{key}.unless", f"must be a list of other {kind} slugs")
    dominance_weight = _number(table, "dominance_weight", 1.0, path, key)
    if "dominance_weight" in table and kind != "region":
        raise ConfigError(path, f"{key}.dominance_weight", "applies to regions only")
    if not 0 < dominance_weight <= 1:
        raise ConfigError(path, f"{key}.dominance_weight", "must be greater than 0 and at most 1")
    return Category(slug=slug, kind=kind, label=label, within=within, threshold=threshold,
                    focus=focus, terms=tuple(terms), not_terms=tuple(not_terms),
                    and_groups=tuple(and_groups), unless=tuple(unless),
                    dominance_weight=dominance_weight)


def _tree(path: Path, kind_key: str, raw: Any, kind: str, other_slugs: set[str]) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(path, kind_key, f"must be a table of [{kind_key}.<slug>] tables")
    cats = {}
    for slug, table in raw.items():
        if slug in other_slugs:
            raise ConfigError(path, f"{kind_key}.{slug}",
                              f"duplicate slug: {slug!r} is already used by a {'topic' if kind == 'region' else 'region'}")
        cats[slug] = _category(slug, kind, table, path, kind_key)
    for slug, cat in cats.items():
        if cat.within is not None and cat.within not in cats:
            raise ConfigError(path, f"{kind_key}.{slug}.within",
                              f"unknown parent {cat.within!r}: no [{kind_key}.{cat.within}] is defined")
    for slug, cat in cats.items():
        for other in cat.unless:
            if other not in cats or other == slug:
                raise ConfigError(path, f"{kind_key}.{slug}.unless",
                                  f"unknown {kind} {other!r}: no [{kind_key}.{other}] is defined")
    for slug in cats:
        seen = [slug]
        parent = cats[slug].within
        while parent is not None:
            if parent in seen:
                chain = " -> ".join(seen + [parent])
                raise ConfigError(path, f"{kind_key}.{slug}.within", f"forms a cycle ({chain})")
            seen.append(parent)
            parent = cats[parent].within
    return cats


def _settings(raw: Any, path: Path) -> TaggingSettings:
    if raw is None:
        return TaggingSettings()
    d = TaggingSettings()
    for name in raw:
        if name not in TAGGING_KEYS:
            raise ConfigError(path, f"tagging.{name}", f"unknown key (known keys: {', '.join(sorted(TAGGING_KEYS))})")
    languages = raw.get("languages", list(d.languages))
    if not isinstance(languages, list) or not languages or not all(
            isinstance(x, str) and re.match(r"^[a-z]{2}$", x) for x in languages):
        raise ConfigError(path, "tagging.languages", "must be a non-empty list of two-letter language codes")
    text_chars = raw.get("text_chars", d.text_chars)
    if isinstance(text_chars, bool) or not isinstance(text_chars, int) or text_chars < 0:
        raise ConfigError(path, "tagging.text_chars", f"must be a whole number >= 0, not {text_chars!r}")
    values = {}
    for name in ("title_factor", "summary_factor", "text_factor", "cluster_window_days",
                 "cluster_text_similarity", "cluster_anchor_similarity", "region_dominance"):
        values[name] = _number(raw, name, getattr(d, name), path, "tagging")
        if values[name] <= 0:
            raise ConfigError(path, f"tagging.{name}", "must be greater than zero")
    for name in ("cluster_text_similarity", "cluster_anchor_similarity", "region_dominance"):
        if values[name] > 1:
            raise ConfigError(path, f"tagging.{name}", "is a similarity between 0 and 1")
    homes = raw.get("home_regions", {})
    if not isinstance(homes, dict) or not all(
            isinstance(k, str) and re.match(r"^[a-z]{2}$", k) and isinstance(v, str)
            for k, v in homes.items()):
        raise ConfigError(path, "tagging.home_regions", "must be a table of two-letter country "
                          "domains to region slugs, e.g. { be = \"belgium\" }")
    return TaggingSettings(languages=tuple(languages), text_chars=text_chars,
                           home_regions=tuple(sorted(homes.items())), **values)


def parse_taxonomy(raw: dict, path: Path) -> Taxonomy:
    path = Path(path)
    regions = _tree(path, "regions", raw.get("regions"), "region", set())
    topics = _tree(path, "topics", raw.get("topics"), "topic", set(regions))
    tagging = raw.get("tagging")
    if tagging is not None and not isinstance(tagging, dict):
        raise ConfigError(path, "tagging", "must be a table")
    relevance = None
    if tagging and "relevance" in tagging:
        relevance = _category("relevance", "relevance", tagging["relevance"], path, "tagging")
    settings = _settings({k: v for k, v in (tagging or {}).items() if k != "relevance"}, path)
    for domain, slug in settings.home_regions:
        if slug not in regions:
            raise ConfigError(path, f"tagging.home_regions.{domain}",
                              f"unknown region {slug!r}: no [regions.{slug}] is defined")
    return Taxonomy(regions=regions, topics=topics, relevance=relevance, settings=settings)
