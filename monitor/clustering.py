"""Story clusters: near-duplicates (MinHash over word shingles) and the same story across outlets and
languages (shared names, numbers and taxonomy concepts) within a time window.

`items.cluster_id` is the id of the item that founded the cluster; the `clusters` table names the
representative (the earliest complete item). The pure part builds fingerprints and links them;
the SQL part keeps LSH band keys in `cluster_keys` so each ingest batch is matched incrementally.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import operator
import re
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from monitor.language import clean, normalise
from monitor.story_facts import (
    NO_FACTS,
    STEM,
    Facts,
    conflicts_with,
    dates_of,
    facts_of,
    numbers_of,
)

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
# A doc's rarest lede stems, names and numbers (at most this many) are its candidate keys, beside
# its text's LSH bands. Two reports of one story in two languages share a handful of them (a
# place, a number), which need not be among the rarest of either: a lede carries 30 to 50, and
# with 24 the labelled clustering sets lost most of their cross-language pairs before they were
# compared (in-window pair recall of clusters_holdout4 0.506, 0.798 with 48).
MAX_ANCHOR_KEYS = 48
# Stems carried by more than this share of the archive's documents (and by more than the floor)
# are not used as candidate keys.
COMMON_STEM_SHARE = 0.05
COMMON_STEM_FLOOR = 50
MAX_CANDIDATES = 12
TEXT_CHARS = 600
LEDE_CHARS = 400
CONCEPT_WEIGHT = 1.5
# A shared number (a death toll, a count of arrivals) survives translation and rewriting: it
# weighs this many times its IDF.
NUMBER_WEIGHT = 2.0
# IDF weight of the shared stems, names and numbers (concepts aside) below which two ledes are
# not the same story whatever their share (about one word carried by 2% of the archive).
MIN_SHARED = 4.0
# A toll both ledes state (the same count of the same kind, 2 or more: Facts.counts) weighs this
# much on top of its number: alone, the evidence MIN_SHARED asks for.
SHARED_COUNT_WEIGHT = MIN_SHARED
# Leads the stored anchors: what made them (stems, numbers in figures and words, name keys, and
# since %3 the facts: "#" + headline number, numbers, dates, weekdays; dates no longer numbers;
# since %4 Greek αυ/ευ in name keys are av/ev).
# Stored anchors of another version are made again, not reused, when their item is re-tagged.
ANCHORS_VERSION = "%4"
# An item tagged relevant and one that is not are the same story only on this many times the
# anchor similarity (cluster_anchor_similarity) that two of the same verdict need.
RELEVANCE_MISMATCH = 1.5
# Names ("~" keys) and numbers survive translation, the rest of a lede's words do not: two ledes
# whose shared names and numbers (at least NEUTRAL_MIN of them) weigh this share of the smaller
# one's are the same story, however little else they share (MIN_SHARED, the regions and the facts
# veto still apply).
_NEUTRAL_START = frozenset("~0123456789")
NEUTRAL_SIMILARITY = 0.5
NEUTRAL_MIN = 2
SIG_CHUNK = 4096  # shingles hashed per numpy block (x NUM_PERM uint32: 1 MB)


def _permutations(seed: int = 20261202) -> tuple[np.ndarray, np.ndarray]:
    """The affine permutations of datasketch 2's MinHash(num_perm=64, seed=20261202, "affine32"),
    drawn the same way, so signatures stored before equal the ones computed now."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


_PERM_A, _PERM_B = _permutations()
_EMPTY_SIG = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
# Capitalised words that are not names in several languages (sentence starts are skipped anyway).
_NOT_NAMES = frozenset(normalise(
    "The This That These Those There Their They What When Where Which While With From After Before "
    "Mr Mrs Ms Dr Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March "
    "April May June July August September October November December De Het Een Le La Les Un Une Des "
    "Der Die Das Ein Eine Il Lo Gli Una El Los Las Del Και Το Τα Η Ο Οι Των Στο Στη Στην W Na Z Do "
    "I A U O Et Und En Y E Van Von Di Da Dans Sur Pour Per Con Par Am Im Al Ha Є Pour"
).split())


@dataclass
class Doc:
    id: int
    at: float | None           # days since the epoch (published, else fetched); None if unknown
    complete: bool             # has the article's full text
    relevant: bool
    text_sig: np.ndarray       # MinHash values (uint32) of word 3-shingles
    anchors: frozenset[str]    # word stems of the lede, numbers; plus "@region:..."/"@topic:..." concepts
    regions: frozenset[str]
    weights: dict[str, float] | None = None  # IDF of each anchor when the doc was matched
    total: float = 0.0
    facts: Facts | None = None   # numbers, dates and weekdays the lede states (conflicts_with)

    names: frozenset[str] | None = None  # its name keys and numbers (what translation keeps)
    neutral: float = 0.0  # their weight
    # False when `at` is only the day it was fetched: no date says when its event happened
    dated: bool = True

    def weigh(self, df: DocFreq) -> None:
        self.weights = df.weights(self.anchors)
        self.total = sum(self.weights.values())
        if self.names is None:
            self.names = frozenset([a for a in self.anchors if a[0] in _NEUTRAL_START])
        self.neutral = sum(map(self.weights.__getitem__, self.names))


def _days(stamp: str | None) -> float | None:
    if not stamp:
        return None
    stamp = stamp.strip()
    if re.fullmatch(r"\d{4}-\d{2}", stamp):
        stamp += "-15"  # a month only: its middle
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp() / 86400.0


def shingle_hashes(words: list[str]) -> list[int]:
    """CRC-32 of each word 3-shingle (one or two words are one shingle; no words, no shingle)."""
    if len(words) < 3:
        return [zlib.crc32(" ".join(words).encode())] if words else []
    # the text is encoded once and each shingle is a slice of it (the same bytes as encoding
    # "x y z"): word i starts at the byte after i words and i spaces
    joined = " ".join(words)
    data = joined.encode()
    lengths = map(len, words) if len(data) == len(joined) else (len(w.encode()) for w in words)
    starts = list(map(operator.add, itertools.accumulate(lengths, initial=0), range(len(words) + 1)))
    crc = zlib.crc32
    return [crc(data[a:b - 1]) for a, b in zip(starts, starts[3:])]


def _fmix32(h: np.ndarray) -> np.ndarray:
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def text_signatures(hash_lists: list[list[int]]) -> np.ndarray:
    """MinHash signatures (one uint32 row of NUM_PERM values per text), vectorised over many texts.

    Values are those of datasketch's MinHash (affine32 scheme, crc32 of shingles), computed in
    blocks: min over shingles of a*fmix32(h)+b (mod 2^32) for each permutation (a, b).
    """
    out = np.tile(_EMPTY_SIG, (len(hash_lists), 1))
    lengths = np.fromiter((len(h) for h in hash_lists), dtype=np.int64, count=len(hash_lists))
    start = 0
    while start < len(hash_lists):
        # a block of whole texts, about SIG_CHUNK shingles
        stop, n = start, 0
        while stop < len(hash_lists) and (n == 0 or n + lengths[stop] <= SIG_CHUNK):
            n += lengths[stop]
            stop += 1
        rows = [i for i in range(start, stop) if lengths[i]]
        if rows:
            flat = np.fromiter(itertools.chain.from_iterable(hash_lists[i] for i in rows),
                               dtype=np.uint32, count=n)
            h = _fmix32(flat)[:, None] * _PERM_A + _PERM_B
            offsets = np.zeros(len(rows), dtype=np.int64)
            np.cumsum(lengths[rows][:-1], out=offsets[1:])
            out[rows] = np.minimum.reduceat(h, offsets, axis=0)
        start = stop
    return out


def text_signature(words: list[str]) -> np.ndarray:
    return text_signatures([shingle_hashes(words)])[0]



def split_facts(parts: Iterable[str]) -> tuple[frozenset[str], Facts]:
    """Stored anchors -> (anchors, facts)."""
    anchors, facts = [], []
    for p in parts:
        if p:
            (facts if p[0] == "#" else anchors).append(p)
    return frozenset(anchors), (Facts.parse(facts) if facts else NO_FACTS)


def stems_of(words: list[str]) -> set[str]:
    """Crude language-independent stems: the first 5 letters of words of 4+ letters, and numbers
    (numbers_of).

    Inflected forms (Ρόδο/Ρόδου, Tunisia/Tunisie, migranti/migrantes) then share a feature.
    """
    stems = {w[:STEM] for w in words if len(w) >= 4 and w not in _NOT_NAMES and not w.isdigit()}
    stems.update(numbers_of(words))
    return stems


# Greek and Cyrillic letters -> Latin ones, for names only (their stems keep the script).
_GREEK_LATIN = ["a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p",
                "r", "s", "t", "i", "f", "h", "ps", "o"]
_CYRILLIC_LATIN = ["a", "b", "v", "g", "d", "dj", "e", "z", "z", "i", "j", "k", "l", "lj", "m",
                   "n", "nj", "o", "p", "r", "s", "t", "c", "u", "f", "h", "c", "c", "dz", "s", "s",
                   "", "i", "", "e", "ju", "ja", "je"]
_TO_LATIN = str.maketrans({
    **dict(zip("αβγδεζηθικλμνξοπρστυφχψω", _GREEK_LATIN, strict=True)),
    **dict(zip("абвгдђежзијклљмнњопрстћуфхцчџшщъыьэюяє", _CYRILLIC_LATIN, strict=True)),
})
# Greek αυ/ευ are av/ev (Γαύδος: Gavdos, Ευρώπη: Evropi), not ai/ei
_NAME_FOLDS = (("ου", "u"), ("αυ", "av"), ("ευ", "ev"), ("ph", "f"), ("th", "t"), ("ck", "k"),
               ("ou", "u"))
NAME_KEY = 4  # letters: Greek accusatives drop the final -s (Έβρο, Πύλο)
_NAME_LETTERS = str.maketrans("vwyqcjz", "bbikkis")
_DOUBLED = re.compile(r"(.)\1+")
# A word starting with a capital letter (Latin, Greek, Cyrillic), not inside a word: "l’Italie",
# "dell'Italia" and "(Lampedusa)" give the name. One findall instead of a test per word.
_UPPER = "".join(c for c in map(chr, itertools.chain(range(0x41, 0x250), range(0x370, 0x530)))
                 if c.isupper())
_CAPITALISED = re.compile(rf"(?<!\w)[{re.escape(_UPPER)}]\w*")


@functools.lru_cache(maxsize=1 << 16)
def name_key(word: str) -> str:
    """A transliteration-insensitive key of a normalised name: Greek and Cyrillic to Latin, the
    letters exonyms and transliterations swap folded together (b/v/w, c/k/q, i/y/j, s/z, ph/f,
    ou/u, doubled letters), the first 4 letters: Λέσβο, Lesbos and Lesvos; Έβρος and Evros;
    Πύλος and Pylos; Λαμπεντούζα and Lampedusa share one."""
    for a, b in _NAME_FOLDS:
        if a in word:
            word = word.replace(a, b)
    word = word.translate(_TO_LATIN).translate(_NAME_LETTERS)
    word = _DOUBLED.sub(r"\1", word)
    return "~" + word[:NAME_KEY]


def names_of(text: str) -> set[str]:
    """Name keys of the capitalised words of a cleaned text (not the function words of _NOT_NAMES):
    proper names and places survive translation, their spelling often does not."""
    keys = set(map(_key_of_capitalised, _CAPITALISED.findall(text)))
    keys.discard("")
    return keys


@functools.lru_cache(maxsize=1 << 16)
def _key_of_capitalised(word: str) -> str:
    """name_key of a capitalised word as written, "" if it is no name (cached: names recur)."""
    word = normalise(word).replace(" ", "")
    if len(word) < NAME_KEY or word in _NOT_NAMES or word.isdigit():
        return ""
    return name_key(word)


def _unsigned_doc(item_id: int, title: str, summary: str, text: str, published: str | None,
                  fetched_at: str | None, complete: bool, relevant: bool, regions: frozenset[str],
                  topics: frozenset[str]) -> tuple[Doc, list[int]]:
    """A doc without its text signature yet, and the shingle hashes the signature is made of."""
    title, summary, text = clean(title), clean(summary), clean((text or "")[: TEXT_CHARS * 2])
    head = " ".join(x for x in (title, summary) if x)
    if summary and "<" not in head and "&" not in head:
        # the lede is the start of the body: normalise it once (normalising is per character
        # once markup and entities are gone, so this is what normalising the whole gives)
        lede = normalise(head).split()
        words = lede + normalise(text[:TEXT_CHARS]).split()
    else:
        body = " ".join(x for x in (title, summary, text[:TEXT_CHARS]) if x)
        words = normalise(body).split()
        lede = normalise(" ".join(x for x in (title, summary or text[:LEDE_CHARS]) if x)).split()
    head_text = " ".join(x for x in (title, summary or text[:LEDE_CHARS]) if x)
    date_days = dates_of(lede)
    facts = facts_of(lede, date_days)
    # a date's day is a fact, not a count: "27 septembre" must not match "27 morts"
    stem_words = [w for i, w in enumerate(lede) if i not in date_days[1]] if date_days[1] else lede
    anchors = stems_of(stem_words) | names_of(head_text)
    if relevant:
        anchors |= {f"@region:{r}" for r in regions} | {f"@topic:{t}" for t in topics}
    at = _days(published) or _days(fetched_at)
    doc = Doc(id=item_id, at=at, complete=complete, relevant=relevant, text_sig=_EMPTY_SIG,
              dated=_days(published) is not None,
              anchors=frozenset(anchors), regions=frozenset(regions) if relevant else frozenset(),
              facts=facts)
    return doc, shingle_hashes(words)


def _sign(parts: list[tuple[Doc, list[int]]]) -> list[Doc]:
    sigs = text_signatures([hashes for _, hashes in parts])
    docs = []
    for (doc, _), sig in zip(parts, sigs, strict=True):
        doc.text_sig = sig
        docs.append(doc)
    return docs


def make_doc(item_id: int, title: str, summary: str, text: str, *, published: str | None = None,
             fetched_at: str | None = None, complete: bool = True, relevant: bool = True,
             regions: frozenset[str] = frozenset(), topics: frozenset[str] = frozenset()) -> Doc:
    return make_docs([dict(item_id=item_id, title=title, summary=summary, text=text,
                           published=published, fetched_at=fetched_at, complete=complete,
                           relevant=relevant, regions=regions, topics=topics)])[0]


def make_docs(specs: Iterable[dict], processes: int = 1) -> list[Doc]:
    """Many docs at once (the MinHash signatures are computed in numpy blocks): each spec holds
    make_doc's arguments by name. With processes > 1, batches of specs are made into docs by that
    many worker processes (monitor.parallel), with the same result."""
    if processes > 1:
        from monitor import parallel

        specs = [dict(s, text=(s.get("text") or "")[: TEXT_CHARS * 2]) for s in specs]  # what is read
        batches = (specs[i:i + 2000] for i in range(0, len(specs), 2000))
        docs: list[Doc] = []
        for part in parallel.ordered_map(_docs_batch, batches, state=None, setup=_no_state,
                                         processes=processes):
            docs.extend(part)
        return docs
    parts = [_unsigned_doc(s["item_id"], s["title"], s.get("summary") or "", s.get("text") or "",
                           s.get("published"), s.get("fetched_at"), s.get("complete", True),
                           s.get("relevant", True), frozenset(s.get("regions", ())),
                           frozenset(s.get("topics", ()))) for s in specs]
    return _sign(parts)


def _no_state() -> None:
    return None


def _docs_batch(_state: None, specs: list[dict]) -> list[Doc]:
    return make_docs(specs)


def docs_from_rows(tagged: Iterable[tuple[dict, object]],
                   stored: dict[int, tuple[np.ndarray, frozenset[str]]] | None = None) -> list[Doc]:
    """Docs of stored item rows with their TagResult (relevance, region and topic tags).

    `stored` (from stored_fingerprints) spares the text work for items already processed since
    their text last changed (a changed text sets tagged_at to NULL): only the concepts are new.
    """
    stored = stored or {}
    docs: list[Doc] = []
    parts = []
    for row, result in tagged:
        regions, topics = frozenset(result.slugs("region")), frozenset(result.slugs("topic"))
        complete = bool(row.get("full_text")) and bool(row.get("text"))
        known = stored.get(row["id"]) if row.get("tagged_at") is not None else None
        if known is None:
            parts.append(_unsigned_doc(row["id"], row["title"] or "", row["summary"] or "",
                                       row["text"] or "", row.get("published"),
                                       row.get("fetched_at"), complete, result.relevant, regions, topics))
            continue
        sig, stored_anchors = known
        anchors, facts = split_facts(stored_anchors)
        if result.relevant:
            anchors = anchors | {f"@region:{r}" for r in regions} | {f"@topic:{t}" for t in topics}
        published = _days(row.get("published"))
        docs.append(Doc(id=row["id"], at=published or _days(row.get("fetched_at")), complete=complete,
                        relevant=result.relevant, text_sig=sig, anchors=anchors,
                        regions=regions if result.relevant else frozenset(), facts=facts,
                        dated=published is not None))
    docs.extend(_sign(parts))
    return docs


def doc_from_row(row: dict, result) -> Doc:
    return docs_from_rows([(row, result)])[0]


class DocFreq:
    """How many documents carry each stem: rare shared stems say "same story", common ones do not."""

    def __init__(self, counts: dict[str, int] | None = None, n: int = 0):
        self.counts = counts if counts is not None else {}
        self.n = n
        self._cache: dict[str, float] = {}
        self._cached_at = n

    def add(self, doc: Doc) -> None:
        self.n += 1
        counts = self.counts
        for a in doc.anchors:
            if a[0] != "@":
                counts[a] = counts.get(a, 0) + 1

    def idf(self, stem: str) -> float:
        if stem[0] == "@":
            return CONCEPT_WEIGHT
        # weights move slowly as the collection grows: recompute them when it grew by a tenth
        if self.n > self._cached_at * 1.1 + 10:
            self._cache.clear()
            self._cached_at = self.n
        value = self._cache.get(stem)
        if value is None:
            value = math.log((self.n + 2) / (self.counts.get(stem, 0) + 1))
            if stem[0].isdigit():
                value *= NUMBER_WEIGHT
            self._cache[stem] = value
        return value

    def weights(self, anchors: Iterable[str]) -> dict[str, float]:
        """{anchor: idf(anchor)} for many anchors (the values idf gives, with less overhead)."""
        cache, counts, log, top = self._cache, self.counts, math.log, self.n + 2
        fresh = False
        out = {}
        for a in anchors:
            if a[0] == "@":
                out[a] = CONCEPT_WEIGHT
                continue
            if not fresh:
                # as idf does: the age of the cache is checked when a stem is first weighed
                fresh = True
                if self.n > self._cached_at * 1.1 + 10:
                    cache.clear()
                    self._cached_at = self.n
            value = cache.get(a)
            if value is None:
                value = log(top / (counts.get(a, 0) + 1))
                if a[0].isdigit():
                    value *= NUMBER_WEIGHT
                cache[a] = value
            out[a] = value
        return out


@functools.lru_cache(maxsize=1 << 18)
def _anchor_key(anchor: str) -> int:
    return int.from_bytes(hashlib.blake2b(anchor.encode(), digest_size=7).digest(), "big") | (1 << 60)


_BAND_SALT = np.arange(1, BANDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_KEY_MASK = np.uint64((1 << 60) - 1)  # below the anchor keys' bit 60


def band_keys(sigs: np.ndarray) -> list[list[int]]:
    """One key per LSH band of ROWS signature values, for each signature (a row of `sigs`);
    the same in every process (unlike hash())."""
    rows = sigs.astype(np.uint64).reshape(len(sigs), BANDS, ROWS)
    h = np.tile(_BAND_SALT, (len(sigs), 1))
    for r in range(ROWS):
        h ^= rows[:, :, r]
        h *= _MIX
        h ^= h >> np.uint64(29)
    return (h & _KEY_MASK).tolist()


def _band_keys(sig: np.ndarray) -> list[int]:
    return band_keys(sig[None, :])[0]


def keys_of(doc: Doc, df: DocFreq, bands: list[int] | None = None) -> list[int]:
    """LSH band keys of the text signature, plus the doc's rarest stems (candidate generation)."""
    keys = bands if bands is not None else _band_keys(doc.text_sig)
    get = df.counts.get
    # A stem that most documents carry finds all of them: as a key it costs a scan of the whole
    # window and says nothing about the story (it still counts in story_similarity).
    common = max(COMMON_STEM_FLOOR, df.n * COMMON_STEM_SHARE)
    rarest = sorted([(n, a) for a in doc.anchors
                     if a[0] != "@" and (n := get(a, 0)) <= common])[:MAX_ANCHOR_KEYS]
    keys.extend([_anchor_key(a) for _n, a in rarest])
    return keys


def text_similarity(a: Doc, b: Doc) -> float:
    return float(np.count_nonzero(a.text_sig == b.text_sig)) / NUM_PERM


def story_similarity(a: Doc, b: Doc, df: DocFreq) -> float:
    """IDF-weighted overlap of lede stems and taxonomy concepts (shared weight / smaller side);
    1.0 when the names and numbers shared are NEUTRAL_SIMILARITY of the smaller side's.

    `a` is the doc being matched (weighed now); `b` keeps the weights it got when it was matched.
    """
    shared = a.anchors & b.anchors
    if not shared:
        return 0.0
    if a.weights is None:
        a.weigh(df)
    if b.weights is None:
        b.weigh(df)
    weights = a.weights
    inter = sum(weights[x] for x in shared)
    if a.facts and b.facts and a.facts.counts and b.facts.counts:
        # the same toll of one kind ("douze personnes sont mortes", "12 migrants who died"):
        # more than the same number; a toll of one is too common to say so
        inter += SHARED_COUNT_WEIGHT * sum(1 for c in a.facts.counts & b.facts.counts
                                           if c[1:] != "1")
    # a short title shares a larger part of itself with anything: some evidence that names this
    # story (a rare word, a name, a number), not only the route's concepts, must be shared
    concepts = sum(1 for x in shared if x[0] == "@")
    if inter - CONCEPT_WEIGHT * concepts < MIN_SHARED:
        return 0.0
    smaller = min(a.total, b.total)
    sim = inter / smaller if smaller else 0.0
    if sim < 1.0:
        names = a.names & b.names
        if (len(names) >= NEUTRAL_MIN and sum(map(weights.__getitem__, names))
                >= NEUTRAL_SIMILARITY * min(a.neutral, b.neutral)):
            return 1.0
    return sim


def same_story(a: Doc, b: Doc, settings, df: DocFreq, text_sim: float | None = None) -> bool:
    """Near-duplicate text, or the same rare words, names, numbers and concepts in the lede (a
    higher bar when one of the two is relevant and the other is not).

    `text_sim` is text_similarity(a, b) when the caller computed it already (in bulk)."""
    if a.at is not None and b.at is not None and abs(a.at - b.at) > settings.cluster_window_days:
        return False
    if text_sim is None:
        text_sim = text_similarity(a, b)
    if text_sim >= settings.cluster_text_similarity:
        return True
    if a.at is None or b.at is None or not (a.dated and b.dated):
        # without both dates only the same text, not the same story, can be told; nor with the
        # day an item was fetched: a source's first crawl fetches months of undated items at once,
        # and a week's worth of one route's news (a vote, a resignation, a deal) became one story
        return False
    if a.regions and b.regions and not (a.regions & b.regions):
        return False
    if a.facts is not b.facts and conflicts_with(a.facts, b.facts, b.at - a.at):
        return False  # the same words, but another toll, date or weekday: another event
    # the tagger misses some reports of a story (a lede without a migration word: "18 bodies found
    # in the Dadia forest"): such an item joins the story's relevant reports on stronger evidence
    bar = settings.cluster_anchor_similarity
    return story_similarity(a, b, df) >= (bar if a.relevant == b.relevant
                                          else bar * RELEVANCE_MISMATCH)


def link_docs(docs: list[Doc], settings, background: DocFreq | None = None) -> dict[int, list[int]]:
    """Pure: doc id -> ids of the cluster's members, founder (earliest) first.

    `background` seeds the document frequencies (e.g. from other text) so that common words
    weigh little even in a small collection.
    """
    return link_with_keys(docs, settings, background)[0]


def link_with_keys(docs: list[Doc], settings, background: DocFreq | None = None,
          keys_within: float | None = None
          ) -> tuple[dict[int, list[int]], dict[int, list[int]], DocFreq]:
    """link_docs, also returning the candidate keys of the docs dated within `keys_within` days
    of the newest (and of the undated), as keys_of gives them in time order, and the final
    document frequencies."""
    linker = Linker(settings, background, keys_within=keys_within, capacity=len(docs))
    linker.add(docs)
    return linker.result()


def _root(parent: list[int], x: int) -> int:
    """Union-find over positions: the root of x (the path to it is compressed on the way)."""
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def _link_order(doc: Doc) -> tuple[float, int]:
    return (doc.at or 0.0, doc.id)


class Linker:
    """Story linking fed in time order, a batch at a time: `monitor retag` links each batch while
    its workers tag the next ones, instead of linking the whole archive once they are done.

    Docs are linked in (date, id) order, each against the earlier ones of its window, with the
    document frequencies of the docs before it; so docs fed in batches, each later than the last,
    are linked exactly as all of them at once. A batch that is not later than what was fed stops
    the linker (`add` returns False) and drops what it holds: the caller links everything at once
    instead.

    With `keys_within`, the candidate keys of the docs dated within that many days of the newest
    (pruned as the docs arrive), and of the undated docs, are kept for `result`.
    """

    def __init__(self, settings, background: DocFreq | None = None, *,
                 keys_within: float | None = None, capacity: int = 1024):
        self.settings = settings
        self.df = DocFreq(dict(background.counts), background.n) if background else DocFreq()
        self.postings: dict[int, list[int]] = {}
        self.order: list[Doc] = []
        self.ats: list[float] = []
        self.sigs = np.empty((max(capacity, 1), NUM_PERM), dtype=np.uint32)
        self.parent: list[int] = []  # union-find over positions (_root)
        self.keys_within = keys_within
        self.kept: dict[int, list[int]] = {}
        self._kept_dated: deque[tuple[float, int]] = deque()
        self.in_order = True

    def add(self, docs: list[Doc]) -> bool:
        """Link `docs` (in any order among themselves) after those fed before; False, linking
        nothing more, if one of them comes before a doc already linked."""
        if not self.in_order:
            return False
        docs = sorted(docs, key=_link_order)
        if not docs:
            return True
        if self.order and _link_order(docs[0]) <= _link_order(self.order[-1]):
            # the caller links everything again: what was linked so far is of no more use
            self.in_order = False
            self.order, self.ats, self.parent, self.postings, self.kept = [], [], [], {}, {}
            self.sigs = np.empty((0, NUM_PERM), dtype=np.uint32)
            self._kept_dated.clear()
            return False
        first = len(self.order)
        count = first + len(docs)
        if count > len(self.sigs):
            grown = np.empty((max(count, 2 * len(self.sigs)), NUM_PERM), dtype=np.uint32)
            grown[:first] = self.sigs[:first]
            self.sigs = grown
        sigs = self.sigs
        sigs[first:count] = np.stack([d.text_sig for d in docs])
        bands = band_keys(sigs[first:count])
        self.order.extend(docs)
        ats = self.ats
        ats.extend(d.at or 0.0 for d in docs)
        parent = self.parent
        parent.extend(range(first, count))
        by_pos, df, postings, settings = self.order, self.df, self.postings, self.settings
        window = settings.cluster_window_days
        keep, kept, kept_dated = self.keys_within is not None, self.kept, self._kept_dated

        for pos in range(first, count):
            doc = by_pos[pos]
            doc.weigh(df)
            at = ats[pos]
            # every key's latest postings, in key order, then counted at once (a Counter keeps
            # first-seen order, so ties rank as they did when counted one by one)
            seen: list[int] = []
            extend = seen.extend
            keys = keys_of(doc, df, bands[pos - first])
            if keep:
                kept[doc.id] = keys
                if doc.at is not None:
                    kept_dated.append((doc.at, doc.id))
            for key in keys:
                plist = postings.get(key)
                if plist is None:
                    postings[key] = [pos]
                    continue
                # drop postings that fell out of the window (docs arrive in time order)
                if len(plist) > 40:
                    del plist[:-20]  # only the latest postings are looked at
                if plist and at - ats[plist[0]] > window:
                    cut = 1
                    while cut < len(plist) and at - ats[plist[cut]] > window:
                        cut += 1
                    del plist[:cut]
                extend(plist if len(plist) <= 20 else plist[-20:])
                plist.append(pos)
            if seen:
                counts = Counter(seen)
                # sorted is stable: equal counts keep first-seen order (as heapq.nlargest does)
                candidates = sorted(counts, key=counts.__getitem__, reverse=True)[:MAX_CANDIDATES]
                sims = np.count_nonzero(sigs[candidates] == sigs[pos], axis=1).tolist()
                root = _root(parent, pos)
                for other, same in zip(candidates, sims, strict=True):
                    # a candidate already in this doc's cluster needs no test (a union changes
                    # nothing)
                    other_root = _root(parent, other)
                    if other_root != root and same_story(doc, by_pos[other], settings, df,
                                                         same / NUM_PERM):
                        parent[max(root, other_root)] = root = min(root, other_root)
            df.add(doc)
        if keep and docs[-1].at is not None:  # undated docs sort first: the last is the newest
            horizon = docs[-1].at - self.keys_within
            while kept_dated and kept_dated[0][0] < horizon:
                kept.pop(kept_dated.popleft()[1], None)
        return True

    def result(self) -> tuple[dict[int, list[int]], dict[int, list[int]], DocFreq]:
        """(doc id -> ids of its cluster's members, founder first; kept candidate keys; the
        final document frequencies)."""
        order, parent = self.order, self.parent
        members: dict[int, list[int]] = defaultdict(list)
        for pos in range(len(order)):
            members[_root(parent, pos)].append(pos)
        out = {}
        for positions in members.values():
            ids = [order[p].id for p in sorted(positions)]
            for i in ids:
                out[i] = ids
        return out, self.kept, self.df
