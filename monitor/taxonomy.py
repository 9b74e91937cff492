"""Region and topic taxonomy from config.toml ([regions.*], [topics.*]): parsed and validated, pure.

PLACEHOLDER: the tagging work replaces this module with the full EMM-style rule language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Category:
    slug: str
    kind: str
    label: str
    within: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    regions: dict = field(default_factory=dict)
    topics: dict = field(default_factory=dict)


def parse_taxonomy(raw: dict, path: Path) -> Taxonomy:
    regions = {slug: Category(slug, "region", t.get("label", slug), t.get("within"))
               for slug, t in raw.get("regions", {}).items()}
    topics = {slug: Category(slug, "topic", t.get("label", slug), t.get("within"))
              for slug, t in raw.get("topics", {}).items()}
    return Taxonomy(regions, topics)
