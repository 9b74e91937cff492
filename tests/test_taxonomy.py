"""The taxonomy in config.toml: the shipped one is complete, and broken ones are refused at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from tests.helpers import ROOT, write_config

REQUIRED_REGIONS = {
    "eastern-border": None, "belarus-border": "eastern-border", "central-med": None,
    "lampedusa": "central-med", "eastern-med": None, "aegean-islands": "eastern-med",
    "evros": "eastern-med", "balkan-route": None, "bosnia": "balkan-route", "western-med": None,
    "canary-islands": "western-med", "ceuta-melilla": "western-med", "channel": None,
    "netherlands": None, "belgium": None, "eu": None,
}
REQUIRED_TOPICS = {"pushbacks", "deaths-missing", "search-rescue", "detention", "reception",
                   "asylum-policy", "returns", "externalisation", "children", "courts",
                   "family-reunification", "integration", "relocation-resettlement", "arrivals"}


def test_shipped_taxonomy_has_every_region_and_topic_with_its_parent():
    taxonomy = load_config(ROOT / "config.toml").taxonomy
    for slug, parent in REQUIRED_REGIONS.items():
        assert taxonomy.regions[slug].within == parent
    assert REQUIRED_TOPICS <= set(taxonomy.topics)
    assert taxonomy.relevance is not None


def test_shipped_taxonomy_covers_eight_languages_with_hundreds_of_terms():
    taxonomy = load_config(ROOT / "config.toml").taxonomy
    per_language: dict[str, int] = {}
    for cat in taxonomy.categories():
        for term in cat.terms:
            per_language[term.lang] = per_language.get(term.lang, 0) + 1
    for lang in ("en", "nl", "fr", "de", "it", "es", "pl", "el", "hr"):
        assert per_language[lang] >= 200, lang
    # exonyms and diacritic variants of one place are all there
    belarus = {t.key for t in taxonomy.regions["belarus-border"].terms}
    for name in ("wit rusland", "bielorussie", "weissrussland", "bialoru", "λευκορωσι"):
        assert name in belarus


def _regions(**extra):
    regions = {"a": {"label": "A", "terms": {"en": ["alpha"]}},
               "b": {"label": "B", "within": "a", "terms": {"en": ["beta"]}}}
    regions.update(extra)
    return regions


def _error(path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_unknown_parent_is_refused_naming_the_key(tmp_path):
    path = write_config(tmp_path, regions=_regions(c={"terms": {"en": ["gamma"]}, "within": "nowhere"}),
                        digest={"sections": []})
    err = _error(path)
    assert err.key == "regions.c.within"
    assert "unknown parent 'nowhere'" in str(err)


def test_cycle_is_refused_naming_the_key(tmp_path):
    regions = _regions()
    regions["a"]["within"] = "b"
    err = _error(write_config(tmp_path, regions=regions, digest={"sections": []}))
    assert err.key in ("regions.a.within", "regions.b.within")
    assert "cycle" in str(err)


def test_slug_used_as_region_and_topic_is_refused(tmp_path):
    topics = {"a": {"label": "Also A", "terms": {"en": ["alpha"]}}}
    err = _error(write_config(tmp_path, regions=_regions(), topics=topics, digest={"sections": []}))
    assert err.key == "topics.a"
    assert "duplicate slug" in str(err)


@pytest.mark.parametrize("terms, key", [
    ({"en": []}, "regions.c.terms.en"),
    ({}, "regions.c.terms"),
    (None, "regions.c.terms"),
    ({"en": ["   "]}, "regions.c.terms.en[0]"),
    ({"en": ["mi*grants"]}, "regions.c.terms.en[0]"),
    ({"xx1": ["word"]}, "regions.c.terms.xx1"),
])
def test_empty_or_malformed_term_lists_are_refused(tmp_path, terms, key):
    table = {"label": "C"}
    if terms is not None:
        table["terms"] = terms
    err = _error(write_config(tmp_path, regions=_regions(c=table), digest={"sections": []}))
    assert err.key == key


@pytest.mark.parametrize("homes, key, sentence", [
    ({"be": "wallonia"}, "tagging.home_regions.be", "unknown region 'wallonia'"),
    ({"BEL": "a"}, "tagging.home_regions", "two-letter country domains"),
    ({"be": 3}, "tagging.home_regions", "two-letter country domains"),
])
def test_home_regions_naming_no_region_are_refused(tmp_path, homes, key, sentence):
    path = write_config(tmp_path, regions=_regions(), digest={"sections": []},
                        tagging={"home_regions": homes})
    err = _error(path)
    assert err.key == key and sentence in str(err)


@pytest.mark.parametrize("value, sentence", [(0, "greater than 0"), (1.5, "at most 1"),
                                              ("half", "must be a number")])
def test_dominance_weight_outside_zero_to_one_is_refused(tmp_path, value, sentence):
    table = {"label": "C", "terms": {"en": ["gamma"]}, "dominance_weight": value}
    err = _error(write_config(tmp_path, regions=_regions(c=table), digest={"sections": []}))
    assert err.key == "regions.c.dominance_weight" and sentence in str(err)


def test_dominance_weight_on_a_topic_is_refused(tmp_path):
    topics = {"t": {"label": "T", "terms": {"en": ["gamma"]}, "dominance_weight": 0.5}}
    err = _error(write_config(tmp_path, regions=_regions(), topics=topics, digest={"sections": []}))
    assert err.key == "topics.t.dominance_weight" and "regions only" in str(err)


def test_empty_and_group_is_refused(tmp_path):
    table = {"label": "C", "terms": {"en": ["gamma"]}, "and": [{"all": [["boat"], []], "weight": 2}]}
    err = _error(write_config(tmp_path, regions=_regions(c=table), digest={"sections": []}))
    assert err.key == "regions.c.and[0].all[1]"


def test_check_config_prints_the_sentence_and_exits_non_zero(tmp_path):
    regions = _regions(c={"terms": {"en": ["gamma"]}, "within": "nowhere"})
    path = write_config(tmp_path, regions=regions, digest={"sections": []})
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "check-config"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "regions.c.within" in proc.stderr and "Traceback" not in proc.stderr


def test_every_taxonomy_table_of_the_shipped_config_is_between_its_markers():
    # docs/taxonomy.md tells editors the rules live between the two markers; a rule after the
    # end marker still loads, but an editor (or a tool) taking the block would lose it
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    before, inside = text.split("# BEGIN TAXONOMY", 1)
    inside, after = inside.split("# END TAXONOMY", 1)
    def tables(part):
        return [line.strip().strip("[]").split(".")[0] for line in part.splitlines()
                if line.lstrip().startswith("[")]

    for outside in (before, after):
        assert not {"tagging", "regions", "topics"} & set(tables(outside))
    assert {"tagging", "regions", "topics"} <= set(tables(inside))
