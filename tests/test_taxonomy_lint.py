"""`monitor tags lint`: editing slips in the taxonomy, found before they cost a tuning round."""

from __future__ import annotations

import json

from monitor.config import load_config
from monitor.taxonomy_lint import foreign_wildcard_matches, repeated_terms
from tests.helpers import ROOT, run_monitor, write_config

SHIPPED = ROOT / "config.toml"


def _taxonomy(tmp_path, regions=None, topics=None):
    sections = {}
    if regions is not None:
        sections["regions"] = regions
    if topics is not None:
        sections["topics"] = topics
    return write_config(tmp_path, **sections)


def test_a_term_listed_twice_and_a_term_that_is_also_a_not_term_are_reported(tmp_path):
    path = _taxonomy(tmp_path, regions={"lampedusa": {
        "label": "Lampedusa",
        "terms": {"it": ["Lampedusa", "Lampedusa:2", "Linosa"], "any": ["Pelagie"]},
        "not": {"it": ["Linosa"]},
    }})
    findings = repeated_terms(load_config(path).taxonomy)
    assert [(f.where, f.message) for f in findings] == [
        ("regions.lampedusa terms.it", "'Lampedusa' is listed twice"),
        ("regions.lampedusa not.it", "'Linosa' is in both terms and not"),
    ]


def test_diacritic_variants_are_not_slips(tmp_path):
    path = _taxonomy(tmp_path, regions={"belarus-border": {
        "label": "Belarus border", "terms": {"any": ["Białowieża", "Bialowieza"]}}})
    assert repeated_terms(load_config(path).taxonomy) == []


def test_a_wildcard_meeting_words_of_a_language_without_lists_is_listed(tmp_path):
    # Slovenian has no term lists, so its items are matched against every language's lists
    path = _taxonomy(tmp_path, topics={"reception": {
        "label": "Reception", "terms": {"de": ["Hotel*"], "any": ["Ter Apel"]}}})
    examples = [
        {"title": "Gradnja hotelov na obali", "lang": "sl"},
        {"title": "Cene hotelov rastejo", "lang": "sl"},
        {"title": "Hotels für Geflüchtete", "lang": "de"},
    ]
    findings = foreign_wildcard_matches(load_config(path).taxonomy, examples)
    assert [(f.where, f.message) for f in findings] == [
        ("topics.reception terms.de", "'Hotel*' also matches hotelov (sl) x2"),
    ]


def test_the_command_exits_1_on_a_slip_and_names_it(tmp_path):
    path = _taxonomy(tmp_path, topics={"returns": {
        "label": "Returns", "terms": {"en": ["deportation", "deportation"]}}})
    proc = run_monitor(path, "tags", "lint")
    assert proc.returncode == 1, proc.stderr
    assert "topics.returns terms.en: 'deportation' is listed twice" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_shipped_taxonomy_has_no_slips_and_the_wildcard_check_reads_labelled_files(tmp_path):
    labelled = tmp_path / "few.jsonl"
    labelled.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in [
        {"title": "Migranti sbarcati a Lampedusa", "lang": "it", "relevant": True,
         "regions": ["central-med", "lampedusa"], "topics": ["arrivals"]},
    ]) + "\n", encoding="utf-8")
    proc = run_monitor(SHIPPED, "tags", "lint", str(labelled))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(
        "0 repeated terms, 0 wildcards matching words of languages without lists; "
        "wildcards checked against 1 items.")
