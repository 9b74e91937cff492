"""The unpacked, memory-mapped language model answers exactly as py3langid's packed one."""

import json
from pathlib import Path

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from monitor import langid_model
from monitor.language import DEFAULT_LANGUAGES

LABELLED = Path(__file__).parent / "data" / "labelled" / "dev.jsonl"


def _texts(n=120):
    lines = LABELLED.read_text(encoding="utf-8").splitlines()[:n]
    return [(d["title"] + " " + (d.get("lede") or ""))[:300] for d in map(json.loads, lines)]


def test_cached_model_classifies_like_the_packed_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = langid_model.load_identifier(DEFAULT_LANGUAGES)
    assert list(tmp_path.glob("border-news-monitor/langid-*/done"))  # it was unpacked
    reopened = langid_model.load_identifier(DEFAULT_LANGUAGES)
    packed = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    packed.set_languages([lang for lang in DEFAULT_LANGUAGES if lang in set(packed.nb_classes)])
    for text in _texts():
        want_lang, want_p = packed.classify(text)
        for ident in (cached, reopened):
            lang, p = ident.classify(text)
            assert lang == want_lang and abs(p - want_p) < 1e-4, text


def test_a_damaged_cache_falls_back_to_the_packed_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    langid_model.load_identifier(("en", "de", "fr"))
    folder = next(tmp_path.glob("border-news-monitor/langid-*"))
    (folder / "ptc.npy").write_bytes(b"not an array")
    ident = langid_model.load_identifier(("en", "de", "fr"))
    assert ident.classify("Die Grenze zwischen Polen und Belarus bleibt geschlossen.")[0] == "de"
