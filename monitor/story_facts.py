"""What a lede states about its event (the numbers it gives, in figures or words; the toll or head
count it leads with; its dates) and when two ledes contradict each other: pure, used by
monitor.clustering to tell two same-place incidents apart."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import NamedTuple

STEM = 5  # letters of a crude stem (monitor.clustering.stems_of, and the count kinds here)


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


def dates_of(words: list[str]) -> tuple[set[str], set[int]]:
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
    dates, skip = date_days if date_days is not None else dates_of(lede)
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
