"""Text normalisation for matching, and language detection (py3langid, bundled model, no download).

Normalisation casefolds and strips diacritics without losing letters (ł -> l, ø -> o, Greek tonos
and final sigma), removes zero-width characters, markup and entities. Pure: no I/O besides the model.
"""

from __future__ import annotations

import contextlib
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


def _fold_chars(text: str) -> str:
    """The per-character part of normalising (casefolded text in): decompose, drop marks and
    invisible characters, map the letters NFKD keeps, turn everything but letters and digits
    into spaces. Each character is folded on its own, which the latin-1 table relies on."""
    if not unicodedata.is_normalized("NFKD", text):
        text = unicodedata.normalize("NFKD", text)
    text = _STRIP.sub("", text)
    if _SPECIAL_CHARS.search(text):
        text = text.translate(_SPECIAL)
    text = text.encode("utf-8", "surrogatepass").translate(_ASCII_TABLE).decode("utf-8", "surrogatepass")
    if not text.isascii():
        text = _OTHER_NONWORD.sub(" ", text)
    return text


def _latin1_tables() -> tuple[bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes]:
    """Casefolding then _fold_chars, for each latin-1 character: a byte table (one character in,
    one out), the bytes that vanish (soft hyphen), the few that expand ("ß" -> "ss", "æ" -> "ae"),
    and those that fold outside latin-1 (µ -> μ), which send the text down the general path."""
    table, delete, expand, outside = bytearray(range(256)), bytearray(), [], bytearray()
    for code in range(256):
        folded = _fold_chars(chr(code).casefold())
        if not folded.isascii():
            outside.append(code)
        elif folded == "":
            delete.append(code)
        elif len(folded) == 1:
            table[code] = ord(folded)
        else:
            expand.append((bytes([code]), folded.encode("ascii")))
    return bytes(table), bytes(delete), tuple(expand), bytes(outside)


_LATIN1_TABLE, _LATIN1_DELETE, _LATIN1_EXPAND, _LATIN1_OUTSIDE = _latin1_tables()
# Punctuation outside latin-1 that Western European text is full of (quotes, dashes, ellipsis)
# folds to spaces: replacing it first lets such text take the latin-1 table.
_PUNCTUATION = "".join(c for c in "\u2019\u201c\u201d\u2013\u2014\u201e\u2018\u2026\u2022"
                       if _fold_chars(c).isspace())


def normalise(text: str | None) -> str:
    """Text -> folded words separated by single spaces (the form terms and texts are matched in)."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    data = None
    if text.isascii():
        data = text.encode("ascii")
    else:
        for mark in _PUNCTUATION:
            if mark in text:
                text = text.replace(mark, " ")
        with contextlib.suppress(UnicodeEncodeError):
            data = text.encode("latin-1")
        if data is not None and any(code in data for code in _LATIN1_OUTSIDE):
            data = None
    if data is None:
        data = _fold_chars(text.casefold()).encode("utf-8", "surrogatepass")
    else:
        # latin-1 (ASCII included): casefolding and folding are one byte table
        for char, folded in _LATIN1_EXPAND:
            if char in data:
                data = data.replace(char, folded)
        data = data.translate(_LATIN1_TABLE, _LATIN1_DELETE)
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data.strip(b" ").decode("utf-8", "surrogatepass")


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
            from monitor.langid_model import load_identifier

            ident = _identifiers[languages] = load_identifier(languages)
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
