"""Normalisation keeps every letter (Greek, Polish) and language detection works on real headlines."""

from __future__ import annotations

import json

from monitor.language import clean, detect_language, normalise
from tests.helpers import DATA


def test_polish_letters_are_folded_not_dropped():
    assert normalise("Białoruś, Łukaszenka, źródło") == "bialorus lukaszenka zrodlo"


def test_greek_accents_and_final_sigma_fold_without_losing_letters():
    assert normalise("ΛΕΥΚΟΡΩΣΊΑΣ Λευκορωσίας") == "λευκορωσιασ λευκορωσιασ"
    assert normalise("Μυτιλήνη") == "μυτιληνη"


def test_other_scripts_and_special_letters():
    assert normalise("Weißrussland Øresund Đakovo İzmir") == "weissrussland oresund dakovo izmir"
    assert normalise("Србија мигранти") == "србија мигранти"


def test_zero_width_characters_entities_and_markup_are_removed():
    assert normalise("Lampe\u200bdu\u00adsa &amp; <b>Linosa</b>\ufeff") == "lampedusa linosa"
    assert clean("Ceuta&nbsp;&#38; Melilla") == "Ceuta\xa0& Melilla"


def test_detects_the_language_of_real_labelled_items():
    rows = [json.loads(line) for line in (DATA / "labelled" / "dev.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["lang"] in ("en", "nl", "fr", "de", "it", "es", "pl", "el")]
    assert len(rows) >= 100
    hits = sum(detect_language(f"{r['title']} {r.get('lede') or ''}") == r["lang"] for r in rows)
    assert hits / len(rows) >= 0.9


def test_a_confident_detection_overrides_a_wrong_declared_language():
    text = "Straż Graniczna zatrzymała grupę migrantów na granicy z Białorusią w pobliżu Kuźnicy."
    assert detect_language(text, declared="en") == "pl"


def test_too_short_text_keeps_the_declared_language():
    assert detect_language("Ter Apel", declared="nl") == "nl"
    assert detect_language("", declared=None) is None


def test_serbo_croatian_declared_variant_is_kept():
    text = "Migranti u kampu Lipa kod Bihaća čekaju zimu bez struje i vode, upozoravaju humanitarci."
    assert detect_language(text, declared="bs") == "bs"


def test_western_european_punctuation_and_latin1_letters_fold_like_any_other_text():
    text = "«Réfugiés» – l’Œuvre d’Æsop… „Straße“ ½ ÞÓRSHÖFN\u00a0ÿ\u00ades"
    assert normalise(text) == "refugies l oeuvre d aesop strasse 1 2 thorshofn yes"
    # the same characters next to a letter outside latin-1 (the general path) fold the same way
    for code in range(32, 256):
        char = chr(code)
        assert normalise(f"a{char}b ł") == (normalise(f"a{char}b") + " l").strip(), repr(char)
