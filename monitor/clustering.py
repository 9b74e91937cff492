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
from typing import NamedTuple

import numpy as np

from monitor.language import clean, normalise

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
STEM = 5
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


def _number_words() -> tuple[dict[str, int], dict[str, int], frozenset[str]]:
    """Number words (normalised) of the monitored languages: units 2-9 (only in compounds such as
    "forty-one"), 10-19 and tens. Words that are also common other words are left out (it "due",
    es "once", fr "neuf" and "tres", it "sei", de "elf")."""
    units = {}
    for n, words in enumerate([
            "two deux dos due zwei twee dwa dwie duas δυο",
            "three trois tre drei drie trzy τρεις τρια",
            "four quatre cuatro quattro vier cztery quatro τεσσερις τεσσερα",
            "five cinq cinco cinque funf vijf piec πεντε",
            "six seis sechs zes szesc εξι",
            "seven sept siete sette sieben zeven siedem sete επτα εφτα",
            "eight huit ocho acht osiem oito οκτω οχτω",
            "nine nueve nove neun negen dziewiec εννεα εννια"], start=2):
        units.update((w, n) for w in words.split())
    teens = {}
    for n, words in enumerate([
            "ten dix diez dieci zehn tien dziesiec dez δεκα",
            "eleven onze undici",
            "twelve douze doce dodici zwolf twaalf dwanascie δωδεκα",
            "thirteen treize trece tredici dreizehn dertien trzynascie treze",
            "fourteen quatorze catorce quattordici vierzehn veertien czternascie catorze",
            "fifteen quinze quince quindici funfzehn vijftien pietnascie",
            "sixteen seize dieciseis sedici sechzehn zestien szesnascie",
            "seventeen diecisiete diciassette siebzehn zeventien siedemnascie",
            "eighteen dieciocho diciotto achtzehn achttien osiemnascie",
            "nineteen diecinueve diciannove neunzehn negentien dziewietnascie"], start=10):
        teens.update((w, n) for w in words.split())
    tens = {}
    for n, words in enumerate([
            "twenty vingt veinte venti zwanzig twintig dwadziescia vinte εικοσι",
            "thirty trente treinta trenta dreissig dertig trzydziesci trinta τριαντα",
            "forty quarante cuarenta quaranta vierzig veertig czterdziesci quarenta σαραντα",
            "fifty cinquante cincuenta cinquanta funfzig vijftig piecdziesiat cinquenta πενηντα",
            "sixty soixante sesenta sessanta sechzig zestig szescdziesiat sessenta εξηντα",
            "seventy septante setenta settanta siebzig zeventig siedemdziesiat",
            "eighty quatre-vingts ochenta ottanta achtzig tachtig osiemdziesiat oitenta ογδοντα",
            "ninety nonante noventa novanta neunzig negentig dziewiecdziesiat"], start=2):
        tens.update((w, 10 * n) for w in words.split())
    teens.update(tens)
    return units, teens, frozenset(("and", "et", "y", "e", "und", "en", "i"))


_UNITS, _NUMBER_WORDS, _NUMBER_JOINERS = _number_words()
_FIGURE = re.compile(r"(?<![\w])\d+(?: \d{3})*(?![\w])")
_TENS = "|".join(sorted((w for w, n in _NUMBER_WORDS.items() if n >= 20), key=len, reverse=True))
_JOINERS = "|".join(sorted(_NUMBER_JOINERS))
_UNIT_WORDS = "|".join(sorted(_UNITS, key=len, reverse=True))
_COMPOUND = re.compile(rf"(?<![\w])({_TENS})(?: (?:{_JOINERS}))? "
                       rf"({_UNIT_WORDS}|one|un|uno|jeden|um)(?![\w])")
_ONES = {"one": 1, "un": 1, "uno": 1, "jeden": 1, "um": 1}


def numbers_of(words: list[str]) -> set[str]:
    """Numbers of 10 and more the words state, in figures or in words: "1.800", "1,800" and
    "1 800" are 1800, "forty-one" and "quarante et un" 41, "doce" and "twelve" 12. Four-digit
    numbers written as years (19xx, 20xx) are left out: dates say little about the story."""
    named = None if _NUMBER_WORDS.keys().isdisjoint(words) else _NUMBER_WORDS.keys() & set(words)
    digits = any(map(str.isdigit, words))
    if not named and not digits:
        return set()
    text = " ".join(words)
    out = set()
    if digits:
        # normalising splits "1.800" and "1,800" into "1 800": thousands groups are joined again
        for m in _FIGURE.finditer(text):
            figure = m.group()
            if len(figure) == 4 and figure[:2] in ("19", "20"):
                continue
            value = figure.replace(" ", "").lstrip("0")
            if len(value) >= 2:
                out.add(value)
    if named:
        compounds = set()
        for m in _COMPOUND.finditer(text):
            unit = m.group(2)
            out.add(str(_NUMBER_WORDS[m.group(1)] + _UNITS.get(unit, _ONES.get(unit, 0))))
            compounds.add(m.group(1))
        out.update(str(_NUMBER_WORDS[w]) for w in named - compounds)
    return out


# -- facts: what two reports of one event cannot disagree on ---------------------------------------
# Two shipwrecks off the same island in one week share the route's every word; what tells them
# apart is what each report states about its own event: the toll or head count it leads with, the
# date and the weekday. Two reports of one event may each state more or fewer of them, but do
# not contradict each other: conflicts_with() vetoes a link (text near-duplicates aside) when both
# state a fact of one kind and they share none.

_MONTHS = {w: m for m, names in enumerate([
    "january janvier enero gennaio januar januari stycznia ιανουαριου",
    "february fevrier febrero febbraio februar februari feb lutego φεβρουαριου",
    "march mars marzo marz maart marca μαρτιου",
    "april avril abril aprile kwietnia απριλιου",
    # English "may" is left out ("12 may have died"), Spanish/Italian/French forms are kept
    "mai mayo maggio mei maja μαιου",
    "june juin junio giugno juni jun czerwca ιουνιου",
    "july juillet julio luglio juli jul lipca ιουλιου",
    "august aout agosto augustus aug sierpnia αυγουστου",
    "september septembre septiembre settembre wrzesnia σεπτεμβριου",
    "october octobre octubre ottobre oktober oct pazdziernika οκτωβριου",
    "november novembre noviembre listopada nov νοεμβριου",
    "december decembre diciembre dicembre dezember dec grudnia δεκεμβριου"], start=1)
    for w in names.split()}
# Weekdays (0 = Monday), only to read dates ("jeudi 11 à vendredi 12 juillet"): as facts of their
# own they vetoed too many true pairs (the day of the wreck in one report, of the announcement in
# another). Greek weekdays are ordinals too (Τρίτη "third"): only the unambiguous ones.
_WEEKDAYS = {w: d for d, names in enumerate([
    "monday lundi lunes lunedi montag maandag poniedzialek",
    "tuesday mardi martes martedi dienstag dinsdag wtorek",
    "wednesday mercredi miercoles mercoledi mittwoch woensdag sroda srode",
    "thursday jeudi jueves giovedi donnerstag donderdag czwartek",
    "friday vendredi viernes venerdi freitag vrijdag piatek παρασκευη",
    "saturday samedi sabado sabato samstag sonnabend zaterdag sobota sobote σαββατο",
    "sunday dimanche domingo domenica sonntag zondag niedziela niedziele κυριακη"])
    for w in names.split()}
# Words that may stand between days and their month: "du 18 au 19 juillet", "jeudi 11 à vendredi
# 12 juillet", "5 and 6 August".
_DATE_GLUE = frozenset("au a and et to al e y bis i und en tot do du de del le the of on la el il "
                       "der den am vom zum w we tra fra entre night nuit notte noche".split())
# Small numbers (2-9) lead many tolls ("quatre migrants", "two shipwrecks"): counted as facts, not
# as anchors. Italian "due" is also English "due": left out.
_SMALL = {w: n for w, n in _UNITS.items() if w != "due"}
_ONE_WORDS = frozenset("one un une uno una ein eine einen jeden jedna um uma".split())
# Round numbers ("una trentina di persone", "une vingtaine de migrants"): a toll too. Spanish
# "cuarentena" is also a quarantine: left out.
_SMALL.update({w: n for n, words in ((10, "decina dizaine decena"), (12, "dozzina douzaine docena"),
                                     (20, "ventina vingtaine veintena"),
                                     (30, "trentina trentaine treintena"),
                                     (40, "quarantina quarantaine"),
                                     (50, "cinquantina cinquantaine cincuentena"),
                                     (100, "centinaio centaine centenar"))
               for w in words.split()})
_NUMBER_START = frozenset(_NUMBER_WORDS) | frozenset(_SMALL)
# People a toll or a head count counts (first 5 letters, normalised): "41 migrants", "quatre
# personnes", "2 Tote", "57 survivants", "30 dispersi". A number that counts something else (hours,
# kilometres, votes, years of age) says nothing against another report.
_PEOPLE = frozenset(w[:STEM] for w in """
    migrant migrants migrantes migranti migranten migrantow migrantinnen exiles exilados naufrages
    naufraghi naufragos people persons personnes personas persone pessoas menschen mensen osob ludzi
    refugees refugies refugiados rifugiati fluchtlinge vluchtelingen uchodzcow dead deaths morts
    mortos muertos morti tote toten doden zmarlych bodies corps cuerpos cadaveri cadaveres leichen
    survivors survivants supervivientes superstiti sopravvissuti uberlebende overlevenden missing
    disparus desaparecidos dispersi vermisste vermist zaginionych victims victimes victimas vittime
    opfer slachtoffers children enfants ninos bambini kinder kinderen dzieci minors mineurs menores
    minori men hommes hombres uomini manner mannen women femmes mujeres donne frauen vrouwen
    passengers passagers pasajeros passeggeri passagiere occupants ocupantes occupanti
    asylum demandeurs solicitantes richiedenti asylbewerber nationals africains subsaharianos
    individuals adults adultes adultos adulti erwachsene μεταναστες ανθρωποι προσφυγες νεκροι
    αγνοουμενοι διασωθεντες""".split())
# What a count counts (first 5 letters of a word near the number): the victims, dead or missing
# ("v": a toll is "2 dead and 30 missing" in one report, "32 victims" in another), or the
# survivors ("s"). Reports of one wreck count the survivors and the victims apart ("80
# superstiti", "33 morti"): only counts of one kind can contradict each other. Other counts (people
# aboard, arrivals, "eight crossings") are too often counts of different things to compare.
_COUNT_KINDS = {stem: kind for kind, words in (
    ("v", "dead death died die dies dying drowned killed morts mort morte morti morto muertos muertas "
          "mueren murieron fallecidos fallecido fallecieron decedes deces perissent periti tote toten "
          "starben gestorben ertrunken doden zmarlych zginelo bodies corps cuerpos cadaveri cadaveres salme "
          "leichen victims victimes victimas vittime opfer νεκροι"),
    ("v", "missing disparus disparues disparu desaparecidos dispersi dispersos vermisste vermist "
          "zaginionych αγνοουμενοι"),
    ("s", "survivors survivants supervivientes superstiti sopravvissuti uberlebende overlevenden "
          "rescued secourus secourues sauves salvati salvadas salvados rescatados gerettet "
          "uratowano διασωθεντες")) for stem in {w[:STEM] for w in words.split()}}


class Facts(NamedTuple):  # a tuple: made once per lede, cheaply
    counts: frozenset[str]   # kind + number of the people counted: "v41" dead or missing,
    #                          "s57" survivors
    numbers: frozenset[str]  # every number the lede states (2 and more; dates and years aside)
    dates: frozenset[str]    # "MM-DD" of day-and-month dates

    def strings(self) -> list[str]:
        out = [f"#c{n}" for n in sorted(self.counts)]
        out += [f"#n{n}" for n in sorted(self.numbers)]
        out += [f"#d{d}" for d in sorted(self.dates)]
        return out

    @staticmethod
    def parse(parts: Iterable[str]) -> Facts:
        counts, numbers, dates = set(), set(), set()
        for p in parts:
            kind, value = p[1], p[2:]
            if kind == "c":
                counts.add(value)
            elif kind == "n":
                numbers.add(value)
            elif kind == "d":
                dates.add(value)
        return Facts(frozenset(counts), frozenset(numbers), frozenset(dates))


NO_FACTS = Facts(frozenset(), frozenset(), frozenset())


def _date_days(words: list[str]) -> tuple[set[str], set[int]]:
    """Day-and-month dates the words state ("12 juillet", "du 18 au 19 juillet", "August 6") and
    the positions of their day numbers."""
    dates: set[str] = set()
    positions: set[int] = set()
    months = _MONTHS
    if months.keys().isdisjoint(words):
        return dates, positions
    for i, w in enumerate(words):
        month = months.get(w)
        if month is None:
            continue
        found = False
        j = i - 1
        while j >= 0 and i - j <= 6:
            x = words[j]
            if x.isdecimal() and len(x) <= 2 and 1 <= int(x) <= 31:
                dates.add(f"{month:02d}-{int(x):02d}")
                positions.add(j)
                found = True
            elif x not in _DATE_GLUE and x not in _WEEKDAYS:
                break
            j -= 1
        if not found and i + 1 < len(words):
            x = words[i + 1]
            if x.isdecimal() and len(x) <= 2 and 1 <= int(x) <= 31:
                dates.add(f"{month:02d}-{int(x):02d}")
                positions.add(i + 1)
    return dates, positions


def _numbers_in_order(words: list[str], skip: set[int]) -> list[tuple[int, str]]:
    """Numbers of 2 and more in the words, in order, with the position of the word after each
    (figures, thousands groups joined; number words and compounds as numbers_of reads them; years
    19xx/20xx and the positions in `skip` left out)."""
    if _NUMBER_START.isdisjoint(words) and not any(map(str.isdecimal, words)):
        return []  # the usual lede without numbers, told in C
    # only the words that can start a number are visited (one comprehension over the lede)
    starts = [i for i, w in enumerate(words) if w in _NUMBER_START or w.isdecimal()]
    out = []
    n = len(words)
    done = 0  # the words before this were read as part of a number
    for i in starts:
        if i < done:
            continue
        w = words[i]
        if w.isdecimal():
            j = i + 1
            while j < n and len(words[j]) == 3 and words[j].isdecimal():
                j += 1
            done = j
            if i not in skip and not (j == i + 1 and len(w) == 4 and w[:2] in ("19", "20")):
                value = "".join(words[i:j]).lstrip("0")
                if value and value != "1":
                    out.append((j, value))
            continue
        tens = _NUMBER_WORDS.get(w)
        if tens is not None:
            k = i + 1
            if k < n and words[k] in _NUMBER_JOINERS:
                k += 1
            unit = words[k] if k < n and tens >= 20 else None
            if unit is not None and (unit in _UNITS or unit in _ONES):
                out.append((k + 1, str(tens + _UNITS.get(unit, _ONES.get(unit, 0)))))
                done = k + 1
                continue
            out.append((i + 1, str(tens)))
        elif w in _SMALL:
            out.append((i + 1, str(_SMALL[w])))
    return out


def facts_of(lede: list[str], date_days: tuple[set[str], set[int]] | None = None) -> Facts:
    """Facts of a lede's words: counts of people, numbers, dates."""
    dates, skip = date_days if date_days is not None else _date_days(lede)
    found = _numbers_in_order(lede, skip)
    # a count: the number is followed by a people word, at most one word between ("41 migrants",
    # "12 autres personnes", "quatre migrants sont morts")
    counts = set()
    kinds = _COUNT_KINDS
    for after, value in found:
        # the number's own words end at `after`: "41 Tote", "30 dispersi"; "41 migrants, three of
        # them minors, have died" (a people word next to it, the kind further on); "rescued 57
        # people", "i cadaveri di 27 migranti" (the kind before it)
        near = [w[:STEM] for w in lede[after:after + 7]]
        kind = kinds.get(near[0]) if near else None
        if kind is None and len(near) > 1:
            kind = kinds.get(near[1])
        if kind is None and any(w in _PEOPLE for w in near[:2]):
            kind = next((k for w in near[2:] if (k := kinds.get(w))), None)
            if kind is None:
                # the number's own words start before `after`: skip them, look two words back
                start = after - 1
                while start > 0 and lede[start - 1].isdecimal():
                    start -= 1
                kind = next((k for w in lede[max(0, start - 3):start] if (k := kinds.get(w[:STEM]))),
                            None)
        if kind is not None:
            counts.add(kind + value)
    # "un migrant est mort", "one migrant died": a toll of one (the article is not a number
    # elsewhere: only right before a people word, with the kind after it)
    if not _ONE_WORDS.isdisjoint(lede):
        for i in [i for i, w in enumerate(lede[:-2]) if w in _ONE_WORDS]:
            # not the unit of "forty-one migrants"; the kind within the clause ("une femme et un
            # enfant ... et 30 disparus" is not one missing)
            if lede[i + 1][:STEM] in _PEOPLE and not (i and lede[i - 1] in _NUMBER_WORDS):
                for x in lede[i + 2:i + 6]:
                    if x in _NUMBER_JOINERS:
                        break
                    if (k := kinds.get(x[:STEM])) is not None:
                        counts.add(k + "1")
                        break
    if not found and not dates and not counts:
        return NO_FACTS
    return Facts(frozenset(counts), frozenset(v for _, v in found), frozenset(dates))


# A toll revised between two reports of one wreck (78 dead, then 79) stays within this share; on
# the day itself tolls move further (Melilla: 5, 18, then 23 dead): counts of reports less than
# this many days apart (dated the same day) are not compared.
COUNT_REVISION = 0.1
COUNT_REVISION_DAYS = 0.5
# Up to the next calendar day a toll only grows (Lanzarote: 3 dead on the night, 4 then 8 the next
# day; Lampedusa: 20 dead, 26 the day after): a later report counting more than an earlier one is
# the same event revised; one counting fewer is another event (two dead one night, one body found
# on the beach the next morning).
COUNT_RISE_DAYS = 1.0


def _counts_conflict(a: Facts, b: Facts, rising: bool = False) -> bool:
    """Counts of one kind in both ledes, none of them a number the other lede states, none two
    within a revision of each other; with `rising` (`a` is the earlier report, within
    COUNT_RISE_DAYS), none of `b`'s at least one of `a`'s."""
    for kind in {c[0] for c in a.counts} & {c[0] for c in b.counts}:
        xs = [c[1:] for c in a.counts if c[0] == kind]
        ys = [c[1:] for c in b.counts if c[0] == kind]
        if not b.numbers.isdisjoint(xs) or not a.numbers.isdisjoint(ys):
            continue
        if rising and max(map(int, ys)) >= min(map(int, xs)):
            continue
        if not any(abs(int(x) - int(y)) <= COUNT_REVISION * max(int(x), int(y))
                   for x in xs for y in ys):
            return True
    return False


def conflicts_with(a: Facts | None, b: Facts | None, days_apart: float = math.inf) -> bool:
    """Whether two ledes state contradicting facts: counts of the dead, the missing or the
    survivors (of reports more than COUNT_REVISION_DAYS apart) where neither states a number the
    other counts and no two are within a revision of each other, nor (reports at most
    COUNT_RISE_DAYS apart) the later one counts more; or day-and-month dates, where both state
    some and share none. `days_apart` is the later report's date minus the earlier's: negative
    when `b` is the earlier one."""
    if a is None or b is None or a is NO_FACTS or b is NO_FACTS:
        return False
    if a.dates and b.dates and a.dates.isdisjoint(b.dates):
        return True
    if not (a.counts and b.counts and abs(days_apart) > COUNT_REVISION_DAYS):
        return False
    if abs(days_apart) <= COUNT_RISE_DAYS:
        return (_counts_conflict(a, b, rising=True) if days_apart > 0
                else _counts_conflict(b, a, rising=True))
    return _counts_conflict(a, b)


def _split_facts(parts: Iterable[str]) -> tuple[frozenset[str], Facts]:
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
    date_days = _date_days(lede)
    facts = facts_of(lede, date_days)
    # a date's day is a fact, not a count: "27 septembre" must not match "27 morts"
    stem_words = [w for i, w in enumerate(lede) if i not in date_days[1]] if date_days[1] else lede
    anchors = stems_of(stem_words) | names_of(head_text)
    if relevant:
        anchors |= {f"@region:{r}" for r in regions} | {f"@topic:{t}" for t in topics}
    at = _days(published) or _days(fetched_at)
    doc = Doc(id=item_id, at=at, complete=complete, relevant=relevant, text_sig=_EMPTY_SIG,
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


def stored_fingerprints(db, item_ids: list[int]) -> dict[int, tuple[np.ndarray, frozenset[str]]]:
    """item id -> (text signature, lede stems) of its stored fingerprint: what depends on the text
    only, not on the tags."""
    out = {}
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        for item_id, sig, anchors in db.execute(
                f"""SELECT item_id, text_sig, anchors FROM cluster_fingerprints
                    WHERE item_id IN ({','.join('?' * len(chunk))})""", chunk).fetchall():
            stems = _stems_of_anchors(anchors)
            if stems is not None:
                out[item_id] = (np.frombuffer(sig, dtype=np.uint32), stems)
    return out


def _stems_of_anchors(anchors: str) -> frozenset[str] | None:
    """The stored anchors without concepts (facts "#..." kept); None when an older version made them."""
    parts = anchors.split("\x1f") if anchors else [""]
    if parts[0] != ANCHORS_VERSION:
        return None
    return frozenset(a for a in parts[1:] if a and a[0] != "@")


_FINGERPRINT_SQL = """SELECT item_id, at, complete, relevant, text_sig, anchors, regions
                      FROM cluster_fingerprints"""


def stored_fingerprint_rows(db) -> dict[int, tuple]:
    """Every stored fingerprint row by item id (read once by a retag, in one scan)."""
    return {row[0]: row for row in db.execute(_FINGERPRINT_SQL)}


def fingerprints_of(rows: dict[int, tuple], item_ids: Iterable[int]
                    ) -> dict[int, tuple[np.ndarray, frozenset[str]]]:
    """stored_fingerprints, from rows read by stored_fingerprint_rows."""
    out = {}
    for item_id in item_ids:
        row = rows.get(item_id)
        if row is not None:
            stems = _stems_of_anchors(row[5])
            if stems is not None:
                out[item_id] = (np.frombuffer(row[4], dtype=np.uint32), stems)
    return out


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
        anchors, facts = _split_facts(stored_anchors)
        if result.relevant:
            anchors = anchors | {f"@region:{r}" for r in regions} | {f"@topic:{t}" for t in topics}
        at = _days(row.get("published")) or _days(row.get("fetched_at"))
        docs.append(Doc(id=row["id"], at=at, complete=complete, relevant=result.relevant, text_sig=sig, anchors=anchors,
                        regions=regions if result.relevant else frozenset(), facts=facts))
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
    if a.at is None or b.at is None:
        return False  # without both dates only the same text, not the same story, can be told
    if a.regions and b.regions and not (a.regions & b.regions):
        return False
    if a.facts is not b.facts and conflicts_with(a.facts, b.facts, b.at - a.at):
        return False  # the same words, but another toll, date or weekday: another event
    # the tagger misses some reports of a story (a lede without a migration word: "18 bodies found
    # in the Dadia forest"): such an item joins the story's relevant reports on stronger evidence
    bar = settings.cluster_anchor_similarity
    return story_similarity(a, b, df) >= (bar if a.relevant == b.relevant
                                          else bar * RELEVANCE_MISMATCH)


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def link_docs(docs: list[Doc], settings, background: DocFreq | None = None) -> dict[int, list[int]]:
    """Pure: doc id -> ids of the cluster's members, founder (earliest) first.

    `background` seeds the document frequencies (e.g. from other text) so that common words
    weigh little even in a small collection.
    """
    return _link(docs, settings, background)[0]


def _link(docs: list[Doc], settings, background: DocFreq | None = None,
          keys_within: float | None = None
          ) -> tuple[dict[int, list[int]], dict[int, list[int]], DocFreq]:
    """link_docs, also returning the candidate keys of the docs dated within `keys_within` days
    of the newest (and of the undated), as keys_of gives them in time order, and the final
    document frequencies."""
    linker = Linker(settings, background, keys_within=keys_within, capacity=len(docs))
    linker.add(docs)
    return linker.result()


def _root(parent: list[int], x: int) -> int:
    """Union-find over positions (a list is faster than _UnionFind's dict; the same roots)."""
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


# -- stored clusters ------------------------------------------------------------------------------

def _fingerprint_row(doc: Doc) -> tuple:
    return (doc.id, doc.at or 0.0, int(doc.complete), int(doc.relevant), doc.text_sig.tobytes(),
            "\x1f".join([ANCHORS_VERSION, *sorted(doc.anchors), *(doc.facts or NO_FACTS).strings()]),
            "\x1f".join(sorted(doc.regions)))


def _doc_from_fingerprint(row) -> Doc:
    item_id, at, complete, relevant, sig, anchors, regions = row
    stems, facts = _split_facts(a for a in anchors.split("\x1f") if a and a[0] != "%")
    return Doc(id=item_id, at=at, complete=bool(complete), relevant=bool(relevant),
               text_sig=np.frombuffer(sig, dtype=np.uint32), anchors=stems,
               regions=frozenset(regions.split("\x1f")) if regions else frozenset(), facts=facts)


def _refresh(db, cluster_ids) -> None:
    """Recompute each cluster's row (size, representative, dates) from its members."""
    for cid in cluster_ids:
        rows = db.execute(
            """SELECT i.id, coalesce(i.published, i.fetched_at) AS at,
                      (i.full_text = 1 AND i.text != '') AS complete
               FROM items i WHERE i.cluster_id = ? ORDER BY at, i.id""", [cid]).fetchall()
        if not rows:
            db.execute("DELETE FROM clusters WHERE id = ?", [cid])
            continue
        complete = [r for r in rows if r[2]]
        rep = (complete or rows)[0][0]
        db.execute(
            """INSERT INTO clusters (id, representative_id, size, first_at, last_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET representative_id = excluded.representative_id,
                 size = excluded.size, first_at = excluded.first_at, last_at = excluded.last_at""",
            [cid, rep, len(rows), rows[0][1], rows[-1][1]])


def _stored_df(db, stems: set[str]) -> DocFreq:
    """Document frequencies of these stems in the archive (the cluster_df table)."""
    counts: dict[str, int] = {}
    stems_list = sorted(stems)
    for start in range(0, len(stems_list), 500):
        chunk = stems_list[start:start + 500]
        counts.update(db.execute(
            f"SELECT stem, df FROM cluster_df WHERE stem IN ({','.join('?' * len(chunk))})",
            chunk).fetchall())
    n = db.execute("SELECT count(*) FROM cluster_fingerprints").fetchone()[0]
    return DocFreq(counts, n)


def _count_stems(db, docs: list[Doc], sign: int) -> None:
    counts: dict[str, int] = defaultdict(int)
    for doc in docs:
        for a in doc.anchors:
            if a[0] != "@":
                counts[a] += 1
    db.conn.executemany(
        """INSERT INTO cluster_df (stem, df) VALUES (?, ?)
           ON CONFLICT(stem) DO UPDATE SET df = max(0, df + excluded.df)""",
        [(stem, sign * n) for stem, n in counts.items()])


def assign_clusters(db, settings, docs: list[Doc]) -> None:
    """Incremental: match each doc against stored fingerprints in the window; merge if it bridges."""
    if not docs:
        return
    window = settings.cluster_window_days
    ids = [d.id for d in docs]
    marks = ",".join("?" * len(ids))
    old = {r[0] for r in db.execute(
        f"SELECT DISTINCT cluster_id FROM items WHERE id IN ({marks}) AND cluster_id IS NOT NULL", ids)}
    previous = [_doc_from_fingerprint(r) for r in db.execute(
        f"""SELECT item_id, at, complete, relevant, text_sig, anchors, regions
            FROM cluster_fingerprints WHERE item_id IN ({marks})""", ids).fetchall()]
    if previous:
        _count_stems(db, previous, -1)
    db.execute(f"DELETE FROM cluster_keys WHERE item_id IN ({marks})", ids)
    db.execute(f"DELETE FROM cluster_fingerprints WHERE item_id IN ({marks})", ids)
    db.execute(f"UPDATE items SET cluster_id = NULL WHERE id IN ({marks})", ids)
    df = _stored_df(db, {a for d in docs for a in d.anchors if a[0] != "@"})
    touched = set(old)
    for doc in sorted(docs, key=lambda d: (d.at or 0.0, d.id)):
        at = doc.at or 0.0
        doc.weigh(df)
        keys = keys_of(doc, df)
        kmarks = ",".join("?" * len(keys))
        candidates = [r[0] for r in db.execute(
            f"""SELECT item_id FROM cluster_keys WHERE key IN ({kmarks}) AND at BETWEEN ? AND ?
                GROUP BY item_id ORDER BY count(*) DESC LIMIT {MAX_CANDIDATES}""",
            [*keys, at - window, at + window])]
        linked: set[int] = set()
        if candidates:
            cmarks = ",".join("?" * len(candidates))
            for row in db.execute(
                    f"""SELECT f.item_id, f.at, f.complete, f.relevant, f.text_sig, f.anchors,
                               f.regions, i.cluster_id
                        FROM cluster_fingerprints f JOIN items i ON i.id = f.item_id
                        WHERE f.item_id IN ({cmarks})""", candidates).fetchall():
                # a candidate in a story this doc already joined needs no test (as in _link):
                # the copies of one report are most of each other's candidates
                if row[7] is None or row[7] in linked:
                    continue
                if same_story(doc, _doc_from_fingerprint(row[:7]), settings, df):
                    linked.add(row[7])
        cluster_id = min(linked) if linked else doc.id
        others = linked - {cluster_id}
        if others:
            omarks = ",".join("?" * len(others))
            db.execute(f"UPDATE items SET cluster_id = ? WHERE cluster_id IN ({omarks})",
                       [cluster_id, *others])
            touched |= others
        db.execute("UPDATE items SET cluster_id = ? WHERE id = ?", [cluster_id, doc.id])
        db.execute("INSERT INTO cluster_fingerprints VALUES (?, ?, ?, ?, ?, ?, ?)",
                   _fingerprint_row(doc))
        db.conn.executemany("INSERT INTO cluster_keys (key, item_id, at) VALUES (?, ?, ?)",
                            [(k, doc.id, at) for k in keys])
        df.add(doc)
        touched.add(cluster_id)
    _count_stems(db, docs, +1)
    _refresh(db, touched)


# New items are matched against recent ones only, so only recent items need stored candidate keys
# (a generous four windows back from the newest item; an item re-processed later gets its own).
KEYS_WINDOWS = 4


def recent_keys_linker(settings, capacity: int = 1024) -> Linker:
    """A Linker for rebuild_clusters' `linked`: it keeps the keys rebuild_clusters stores."""
    return Linker(settings, keys_within=KEYS_WINDOWS * settings.cluster_window_days,
                  capacity=capacity)


def rebuild_clusters(db, settings, docs: list[Doc], stored: dict[int, tuple] | None = None,
                     stamps: dict[int, str | None] | None = None,
                     linked: Linker | None = None) -> tuple[int, int]:
    """Bulk: recluster every doc from scratch (monitor retag); (clusters, multi-item clusters).

    The tables end as if they were emptied and refilled, but only rows that differ are written:
    a retag after a small taxonomy change moves few items. `stored` (stored_fingerprint_rows)
    and `stamps` (item id -> coalesce(published, fetched_at)) spare reading them again; `linked`,
    a Linker (made by recent_keys_linker) that was fed exactly `docs`, spares linking them.
    """
    if linked is not None and linked.in_order and len(linked.order) == len(docs):
        members, recent_keys, df = linked.result()
    else:
        members, recent_keys, df = _link(docs, settings,
                                         keys_within=KEYS_WINDOWS * settings.cluster_window_days)
    ids = {d.id for d in docs}

    # fingerprints
    if stored is None:
        stored = stored_fingerprint_rows(db)
    fingerprints = [_fingerprint_row(d) for d in docs]
    gone = [(i,) for i in stored if i not in ids]
    db.conn.executemany("DELETE FROM cluster_fingerprints WHERE item_id = ?", gone)
    db.conn.executemany("INSERT OR REPLACE INTO cluster_fingerprints VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [r for r in fingerprints if stored.get(r[0]) != r])

    # candidate keys (as keys_of gives them, linking computed them) and stem frequencies
    at_of = {d.id: d.at or 0.0 for d in docs if d.id in recent_keys}
    keys = {i: sorted((k, i, at_of[i]) for k in ks) for i, ks in recent_keys.items()}
    old_keys: dict[int, list[tuple]] = defaultdict(list)
    for row in db.execute("SELECT key, item_id, at FROM cluster_keys"):
        old_keys[row[1]].append(row)
    stale = [(i,) for i, rows in old_keys.items() if i not in keys or sorted(rows) != keys[i]]
    db.conn.executemany("DELETE FROM cluster_keys WHERE item_id = ?", stale)
    rows = [r for i, new in keys.items() if sorted(old_keys.get(i, ())) != new for r in new]
    rows.sort()  # in index order: B-tree inserts then touch neighbouring pages
    db.conn.executemany("INSERT INTO cluster_keys (key, item_id, at) VALUES (?, ?, ?)", rows)
    old_df = dict(db.execute("SELECT stem, df FROM cluster_df"))
    db.conn.executemany("DELETE FROM cluster_df WHERE stem = ?",
                        [(stem,) for stem in old_df if stem not in df.counts])
    db.conn.executemany("INSERT OR REPLACE INTO cluster_df (stem, df) VALUES (?, ?)",
                        [(stem, n) for stem, n in df.counts.items() if old_df.get(stem) != n])

    # only the items whose cluster changed are written
    current = dict(db.conn.execute("SELECT id, cluster_id FROM items"))
    db.conn.executemany("UPDATE items SET cluster_id = ? WHERE id = ?",
                        [(ids_[0], i) for i, ids_ in members.items() if current.get(i) != ids_[0]])

    # clusters: representative (earliest complete item, else earliest), size, first and last date
    if stamps is None or not ids <= stamps.keys():
        stamps = dict(db.execute("SELECT id, coalesce(published, fetched_at) FROM items"))
    complete = {d.id: d.complete for d in docs}
    founders = {ids_[0]: ids_ for ids_ in members.values()}
    clusters = {}
    for cid, member_ids in founders.items():
        if len(member_ids) == 1:
            clusters[cid] = (cid, cid, 1, stamps.get(cid), stamps.get(cid))
            continue
        # as SQL orders coalesce(published, fetched_at), id: no date first
        order = sorted(member_ids,
                       key=lambda i: (stamps.get(i) is not None, stamps.get(i) or "", i))
        rep = next((i for i in order if complete[i]), order[0])
        clusters[cid] = (cid, rep, len(order), stamps.get(order[0]), stamps.get(order[-1]))
    old_clusters = {r[0]: r for r in db.execute(
        "SELECT id, representative_id, size, first_at, last_at FROM clusters")}
    db.conn.executemany("DELETE FROM clusters WHERE id = ?",
                        [(cid,) for cid in old_clusters if cid not in clusters])
    db.conn.executemany(
        "INSERT OR REPLACE INTO clusters (id, representative_id, size, first_at, last_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [row for cid, row in clusters.items() if old_clusters.get(cid) != row])
    multi = sum(1 for ids_ in founders.values() if len(ids_) > 1)
    return len(founders), multi


def cluster_info(db, cluster_id: int) -> dict | None:
    row = db.execute("SELECT id, representative_id, size, first_at, last_at FROM clusters WHERE id = ?",
                     [cluster_id]).fetchone()
    if row is None:
        return None
    members = [dict(zip(("id", "source", "title", "language", "at"), r, strict=True)) for r in db.execute(
        """SELECT id, source, title, language, coalesce(published, fetched_at) AS at FROM items
           WHERE cluster_id = ? ORDER BY at, id LIMIT 200""", [cluster_id])]
    return {"id": row[0], "representative_id": row[1], "size": row[2], "first_at": row[3],
            "last_at": row[4], "members": members}


def evaluate_clusters(stories: dict[int, str], members: dict[int, list[int]]) -> dict:
    """Purity of predicted clusters and the share of true same-story pairs clustered together."""
    clusters = {tuple(ids) for ids in members.values()}
    n = sum(len(c) for c in clusters)
    majority = 0
    for ids in clusters:
        counts: dict[str, int] = defaultdict(int)
        for i in ids:
            counts[stories[i]] += 1
        majority += max(counts.values())
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, story in stories.items():
        by_story[story].append(i)
    pairs = together = 0
    for ids in by_story.values():
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pairs += 1
                together += members[ids[x]] is members[ids[y]] or members[ids[x]] == members[ids[y]]
    return {"items": n, "clusters": len(clusters), "purity": majority / n if n else 1.0,
            "pairs": pairs, "pair_recall": together / pairs if pairs else 1.0}


def labelled_docs(rows: list[dict], matcher) -> list[Doc]:
    """Docs of labelled story rows ({"title", "lede", "lang", "published", "published_approx"}),
    tagged by `matcher` (monitor.tagging.matcher_for(taxonomy)). Ids are the rows' positions.

    A row's date is `published`, else `published_approx` (a month: its middle), else unknown."""
    specs = []
    for i, r in enumerate(rows):
        res = matcher.tag(r["title"], r.get("lede"), None, r.get("lang"))
        specs.append(dict(item_id=i, title=r["title"], summary=r.get("lede") or "", text="",
                          published=r.get("published") or r.get("published_approx"),
                          relevant=res.relevant, regions=frozenset(res.slugs("region")),
                          topics=frozenset(res.slugs("topic"))))
    return make_docs(specs)


def background_of(rows: list[dict], matcher) -> DocFreq:
    """Document frequencies of other real items' title and lede (an archive's worth of words):
    in a small labelled set every word is rare, in an archive the route's names and the words of
    every shipwreck are not."""
    df = DocFreq()
    for doc in labelled_docs(rows, matcher):
        df.add(doc)
    return df


def evaluate_labelled(rows: list[dict], matcher, settings,
                      background: DocFreq | None = None) -> dict:
    """evaluate_clusters over labelled story rows, plus the pair recall of the pairs the window
    allows (both dated, at most cluster_window_days apart) and the pairs missed or wrongly merged:
    what `bench/eval_clustering.py` prints."""
    docs = labelled_docs(rows, matcher)
    members = link_docs(docs, settings, background)
    stories = {i: r["story"] for i, r in enumerate(rows)}
    report = evaluate_clusters(stories, members)
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, story in stories.items():
        by_story[story].append(i)
    window = settings.cluster_window_days
    in_window = together = 0
    missed = []
    for ids in by_story.values():
        for x, y in itertools.combinations(ids, 2):
            a, b = docs[x], docs[y]
            allowed = a.at is not None and b.at is not None and abs(a.at - b.at) <= window
            linked = members[x] == members[y]
            in_window += allowed
            together += allowed and linked
            if not linked:
                missed.append((x, y, allowed))
    wrong = [sorted(ids) for ids in {tuple(m) for m in members.values()}
             if len({stories[i] for i in ids}) > 1]
    report.update(window_pairs=in_window,
                  window_pair_recall=together / in_window if in_window else 1.0,
                  missed=missed, impure=wrong, docs=docs, members=members)
    return report
