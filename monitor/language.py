"""Text normalisation for matching, and language detection (py3langid, bundled model, no download).

Normalisation casefolds and strips diacritics without losing letters (ł -> l, ø -> o, Greek tonos
and final sigma), removes zero-width characters, markup and entities. Pure: no I/O besides the model.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata

_TAG = re.compile(r"<[^<>]{0,1000}>")
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff]")
_COMBINING = re.compile("[\u0300-\u036f\u0483-\u0489\u064b-\u065f\u0670\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# ASCII punctuation -> space through a byte table (much faster than a regex over every gap);
# the few non-ASCII punctuation marks are replaced by a regex that matches only them.
_ASCII_PUNCT = bytes(c for c in range(128) if not chr(c).isalnum())
_ASCII_TABLE = bytes.maketrans(_ASCII_PUNCT, b" " * len(_ASCII_PUNCT))
_OTHER_NONWORD = re.compile(r"[^\x00-\x7f\w]")
_RUNS = re.compile("  +")
# Letters that NFKD does not decompose: map them instead of letting them vanish.
_SPECIAL = str.maketrans({
    "ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŀ": "l", "ŧ": "t", "ƀ": "b",
    "æ": "ae", "œ": "oe", "þ": "th", "ß": "ss", "ĸ": "k", "ŋ": "n", "ſ": "s", "ς": "σ",
    "ǆ": "dz", "ǉ": "lj", "ǌ": "nj",
})


# Combining marks and invisible characters, removed in one pass after decomposition.
_STRIP = re.compile("[" + _COMBINING.pattern[1:-1] + _INVISIBLE.pattern[1:-1] + "]")
_SPECIAL_CHARS = re.compile("[" + "".join(chr(c) for c in _SPECIAL) + "]")


def clean(text: str | None) -> str:
    """Scraped field -> plain text: markup dropped, entities decoded, invisible characters removed."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if text.isascii():
        return text
    return _INVISIBLE.sub("", text)


def fold(text: str) -> str:
    """Casefold and strip diacritics, keeping every base letter (Greek and Polish included)."""
    text = text.casefold()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
        if _SPECIAL_CHARS.search(text):
            text = text.translate(_SPECIAL)
    return text


def normalise(text: str | None) -> str:
    """Text -> folded words separated by single spaces (the form terms and texts are matched in)."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    text = text.casefold()
    if not text.isascii():
        if not unicodedata.is_normalized("NFKD", text):
            text = unicodedata.normalize("NFKD", text)
        text = _STRIP.sub("", text)
        if _SPECIAL_CHARS.search(text):
            text = text.translate(_SPECIAL)
    text = text.encode("utf-8", "surrogatepass").translate(_ASCII_TABLE).decode("utf-8", "surrogatepass")
    if not text.isascii():
        text = _OTHER_NONWORD.sub(" ", text)
    return _RUNS.sub(" ", text).strip()


# -- language detection -------------------------------------------------------------------------

_SERBO_CROATIAN = {"hr", "bs", "sr"}
DEFAULT_LANGUAGES = ("en", "nl", "fr", "de", "it", "es", "pl", "el", "hr", "bs", "sr", "pt", "sv",
                     "ro", "hu", "cs", "sk", "sl", "bg", "lt", "lv", "et", "fi", "da", "mt", "tr",
                     "ar", "ru", "uk", "sq", "mk")
_lock = threading.Lock()
_identifiers: dict[tuple[str, ...], object] = {}


def _identifier(languages: tuple[str, ...]):
    with _lock:
        ident = _identifiers.get(languages)
        if ident is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            known = set(ident.nb_classes)
            ident.set_languages([lang for lang in languages if lang in known] or None)
            _identifiers[languages] = ident
        return ident


def detect_language(text: str, declared: str | None = None,
                    languages: tuple[str, ...] = DEFAULT_LANGUAGES,
                    max_chars: int = 300) -> str | None:
    """ISO 639-1 code of `text`, or the declared language when the text is too short to tell.

    Declared page languages are often wrong, so a confident detection wins; Serbo-Croatian
    variants are too close to separate reliably, so a declared hr/bs/sr is kept within that group.
    """
    declared = (declared or "").strip().lower()[:2] or None
    sample = clean(text[: max_chars * 2])[:max_chars]
    letters = sum(1 for c in sample[:200] if c.isalpha())
    if letters < 12:
        return declared
    lang, prob = _identifier(tuple(languages)).classify(sample)
    if declared and declared in _SERBO_CROATIAN and lang in _SERBO_CROATIAN:
        return declared
    if prob < 0.6 and declared:
        return declared
    return lang
