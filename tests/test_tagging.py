"""Tagging: the rule language on short phrases, then stored items tagged with evidence at ingest."""

from __future__ import annotations

import json
import time

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.store import open_db, save_items
from monitor.tag_eval import bootstrap_intervals, evaluate
from monitor.tagging import matcher_for, process_items
from monitor.taxonomy import parse_taxonomy
from tests.helpers import DATA, ROOT, write_config


def _taxonomy(regions=None, topics=None, relevance=None):
    raw = {"regions": regions or {}, "topics": topics or {},
           "tagging": {"relevance": relevance or {"threshold": 2,
                                                  "terms": {"en": ["migrant*:2", "asylum*:2"]}}}}
    return parse_taxonomy(raw, "test.toml")


def _tags(taxonomy, title, summary="", text="", lang="en", **kw):
    result = matcher_for(taxonomy).tag(title, summary, text, lang, **kw)
    return {(t.kind, t.slug) for t in result.tags}, result


ISLAND = {"island": {"label": "Island", "within": "sea", "threshold": 3,
                     "terms": {"any": ["Lampedusa:3", "Λαμπεντούζα:3"]}},
          "sea": {"label": "Sea", "threshold": 3, "terms": {"en": ["central Mediterranean:3"]}}}


def test_child_region_implies_its_parent_with_evidence():
    tags, result = _tags(_taxonomy(ISLAND), "Migrants land on Lampedusa")
    assert tags == {("region", "island"), ("region", "sea")}
    parent = next(t for t in result.tags if t.slug == "sea")
    assert parent.evidence[0]["implied_by"] == "island"
    child = next(t for t in result.tags if t.slug == "island")
    assert child.evidence[0] == {"term": "Lampedusa", "field": "title", "weight": 3.0, "lang": "any",
                                 "count": 1}


def test_language_neutral_names_match_in_every_language_and_script():
    tax = _taxonomy(ISLAND, relevance={"threshold": 1, "terms": {"any": ["Lampedusa", "Λαμπεντούζα"]}})
    assert ("region", "island") in _tags(tax, "Νέα άφιξη στη Λαμπεντούζα", lang="el")[0]
    assert ("region", "island") in _tags(tax, "LAMPEDUSA: nuovi sbarchi", lang="it")[0]


def test_passing_mention_in_the_body_is_not_enough_for_a_region():
    tax = _taxonomy(ISLAND)
    lede = "The coast guard says forty people were saved."
    tags, result = _tags(tax, "Migrants rescued at sea", lede, "... later taken to Lampedusa.")
    assert ("region", "island") not in tags
    assert any(s["tag"] == "island" and "body" in s["reason"] for s in result.suppressed)
    tags, _ = _tags(tax, "Migrants rescued at sea", lede,
                    "Lampedusa hotspot is full. On Lampedusa the mayor asked for help. Lampedusa waits.")
    assert ("region", "island") in tags


def test_a_much_weaker_place_is_dropped_but_an_eu_act_at_a_border_keeps_the_border():
    regions = {"eu": {"label": "EU", "threshold": 3, "terms": {"en": ["Frontex:3", "EU:1"]}},
               "balkans": {"label": "Balkans", "threshold": 3, "terms": {"en": ["Hungary:2"]}},
               "med": {"label": "Med", "threshold": 3, "terms": {"en": ["Libya:2"]}}}
    tax = _taxonomy(regions)
    title, lede = "Frontex leaves Hungary", "Frontex, the EU border agency, ends its migrant work."
    # Libya 4 against Frontex and EU 9: below half of it, so dropped
    tags, result = _tags(tax, title.replace("Hungary", "Libya"), lede)
    assert ("region", "med") not in tags
    assert any(s["tag"] == "med" and "much weaker" in s["reason"] for s in result.suppressed)
    # the same scores with the EU weighed at 0.7 (6.3, half of it 3.15): Hungary stays
    regions["eu"]["dominance_weight"] = 0.7
    tags, _ = _tags(_taxonomy(regions), title, lede)
    assert {("region", "eu"), ("region", "balkans")} <= tags


def test_non_relevant_items_get_no_tags():
    tags, result = _tags(_taxonomy(ISLAND), "Lampedusa beaches are full of tourists")
    assert not result.relevant and tags == set()


def test_explain_also_says_what_vetoed_a_non_relevant_item():
    # the tagger stops at relevance for most items; explain (the desk, `monitor tags explain`)
    # still shows which NOT-term vetoed the relevance, with the same verdict and score
    rel = {"threshold": 2, "terms": {"en": ["migrant*:2"]}, "not": {"en": ["migrant workers"]}}
    tax = _taxonomy(ISLAND, relevance=rel)
    title = "Migrant workers on Lampedusa demand contracts"
    tags, fast = _tags(tax, title)
    tags_explained, explained = _tags(tax, title, explain=True)
    assert not fast.relevant and not explained.relevant and tags == tags_explained == set()
    assert fast.relevance_score == explained.relevance_score == 4.0  # title counts double
    assert {s["tag"]: s.get("vetoed_by") for s in explained.suppressed}["relevance"] == [
        {"term": "migrant workers", "field": "title"}]


def test_prefixes_sequences_and_weights_reach_the_threshold():
    topics = {"policy": {"label": "Policy", "threshold": 3,
                         "terms": {"pl": ["polityk* migracyjn*:3", "ustaw*:1"]}}}
    tax = _taxonomy(topics=topics, relevance={"threshold": 1, "terms": {"pl": ["migra*"]}})
    assert ("topic", "policy") in _tags(tax, "Nowa polityka migracyjna rządu", lang="pl")[0]
    assert ("topic", "policy") in _tags(tax, "Spór o politykę migracyjną", lang="pl")[0]
    # the words must follow each other
    assert ("topic", "policy") not in _tags(tax, "Polityka rządu wobec migracji", lang="pl")[0]
    # one weak term is below the threshold
    assert ("topic", "policy") not in _tags(tax, "Ustawa o migracji", lang="pl")[0]


def test_and_group_within_n_words():
    topics = {"deals": {"label": "Deals", "threshold": 3, "terms": {"en": ["externalisation:3"]},
                        "and": [{"all": [["deal", "agreement"], ["Tunisia", "Libya"]],
                                 "near": 3, "weight": 2}]}}
    tax = _taxonomy(topics=topics)
    assert ("topic", "deals") in _tags(tax, "Migrant deal with Tunisia signed")[0]
    far = "Migrant deal signed after long talks in Brussels with officials from Tunisia"
    assert ("topic", "deals") not in _tags(tax, far)[0]


def test_not_group_vetoes_the_category():
    topics = {"rescue": {"label": "Rescue", "threshold": 2, "terms": {"en": ["rescue*:2"]},
                         "not": {"en": ["rescue dog*"]}}}
    tax = _taxonomy(topics=topics)
    assert ("topic", "rescue") in _tags(tax, "Migrants rescued off Malta")[0]
    tags, result = _tags(tax, "Rescue dogs join migrant search")
    assert ("topic", "rescue") not in tags
    assert result.suppressed[0]["vetoed_by"][0]["term"] == "rescue dog*"


def test_unless_drops_a_topic_given_together_with_another():
    topics = {"arrivals": {"label": "Arrivals", "threshold": 2, "terms": {"en": ["crossing*:2"]},
                           "unless": ["deaths"]},
              "deaths": {"label": "Deaths", "threshold": 2, "terms": {"en": ["died:2"]}}}
    tax = _taxonomy(topics=topics)
    assert _tags(tax, "Migrant crossings rise")[0] == {("topic", "arrivals")}
    assert _tags(tax, "Migrants died during crossing")[0] == {("topic", "deaths")}


def test_a_topic_dropped_by_unless_does_not_drop_another():
    topics = {"rescue": {"label": "Rescue", "threshold": 2, "terms": {"en": ["rescued:2"]},
                         "unless": ["deals"]},
              "deals": {"label": "Deals", "threshold": 2, "terms": {"en": ["deal:2"]},
                        "unless": ["relocation"]},
              "relocation": {"label": "Relocation", "threshold": 2, "terms": {"en": ["relocated:2"]}}}
    tax = _taxonomy(topics=topics)
    # a deal with a third country takes the item from the rescue ...
    assert _tags(tax, "Migrants rescued at sea under a new deal")[0] == {("topic", "deals")}
    # ... but a relocation deal is relocation, and the rescue stays
    tags, result = _tags(tax, "Migrants rescued at sea will be relocated under a deal")
    assert tags == {("topic", "rescue"), ("topic", "relocation")}
    assert [(s["tag"], s["reason"]) for s in result.suppressed] == [
        ("deals", "not given together with relocation")]


def test_terms_of_another_language_do_not_match():
    topics = {"courts": {"label": "Courts", "threshold": 2, "terms": {"pl": ["sąd:2"], "en": ["court:2"]}}}
    tax = _taxonomy(topics=topics, relevance={"threshold": 1, "terms": {"any": ["migrant*"]}})
    assert ("topic", "courts") in _tags(tax, "Sąd w sprawie migrantów", lang="pl")[0]
    assert ("topic", "courts") not in _tags(tax, "Sad migrants in the rain", lang="en")[0]


def test_one_place_counts_once_even_when_two_terms_match_it():
    topics = {"reception": {"label": "R", "threshold": 5,
                            "terms": {"hr": ["prihvatn*:3", "prihvatni centar:3"]}}}
    tax = _taxonomy(topics=topics, relevance={"threshold": 1, "terms": {"any": ["migrant*"]}})
    _, result = _tags(tax, "", "Migranti u prihvatni centar", lang="hr")
    assert not result.tags  # 3 x 1.5 = 4.5 < 5: the two terms start at the same word


def test_a_sequence_and_a_phrase_at_the_same_word_count_once():
    regions = {"eu": {"label": "EU", "threshold": 3,
                      "terms": {"hr": ["Europsk* unij*:1.5", "Europske unije:1.5"]}}}
    tax = _taxonomy(regions, relevance={"threshold": 1, "terms": {"any": ["migrant*"]}})
    # "Europske unije" is the fourth word: 1.5 x 2 (title) = 3, not 6 from both terms
    for title in ("Europske unije i migranti", "Migranti na granici Europske unije"):
        (tag,) = matcher_for(tax).tag(title, "", "", "hr").tags
        assert tag.score == 3.0 and len(tag.evidence) == 1


def test_the_matcher_is_compiled_once_per_taxonomy():
    tax = _taxonomy(ISLAND)
    assert matcher_for(tax) is matcher_for(tax)
    assert matcher_for(_taxonomy(ISLAND)) is not matcher_for(tax)


# -- the shipped taxonomy on real text ---------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    return load_config(ROOT / "config.toml").taxonomy


def _dev():
    return [json.loads(line) for line in (DATA / "labelled" / "dev.jsonl").read_text().splitlines()
            if line.strip()]


def test_evaluation_counts_precision_recall_and_f1():
    regions = dict(ISLAND, other={"label": "Other island", "within": "sea", "threshold": 3,
                                  "terms": {"any": ["Linosa:3"]}})
    tax = _taxonomy(regions, topics={"arrivals": {"label": "A", "threshold": 2,
                                                  "terms": {"en": ["landed:2"]}}})
    examples = [
        {"title": "Migrants landed on Lampedusa", "lede": "", "lang": "en", "relevant": True,
         "regions": ["island"], "topics": ["arrivals"]},
        {"title": "Lampedusa beaches are full", "lede": "", "lang": "en", "relevant": False,
         "regions": [], "topics": []},
        {"title": "Migrants taken to Linosa", "lede": "", "lang": "en", "relevant": True,
         "regions": ["island"], "topics": []},
        {"title": "Asylum rules change", "lede": "", "lang": "en", "relevant": False,
         "regions": [], "topics": []},
    ]
    report = evaluate(tax, examples)
    assert report["n"] == 4
    assert report["relevance_accuracy"] == 0.75
    per_tag = report["regions"]["per_tag"]
    assert per_tag["island"] == {"tp": 1, "fp": 0, "fn": 1, "precision": 1.0, "recall": 0.5,
                                 "f1": pytest.approx(2 / 3)}
    assert per_tag["other"]["fp"] == 1
    assert per_tag["sea"]["tp"] == 2  # the labelled child implies its parent
    m = report["regions"]["micro"]
    assert (m["tp"], m["fp"], m["fn"]) == (3, 1, 1)
    assert m["f1"] == pytest.approx(0.75)
    assert report["topics"]["micro"]["f1"] == 1.0


def test_bootstrap_intervals_of_a_perfect_and_an_imperfect_set():
    perfect = [(1, 1, 0, 0, 2, 0, 0)] * 50
    iv = bootstrap_intervals(perfect, 200)
    assert iv["relevance_accuracy"] == [1.0, 1.0] and iv["regions_f1"] == [1.0, 1.0]
    # half the items wrong on relevance, regions right on half: the interval spans the middle
    mixed = [(1, 1, 0, 0, 1, 0, 0), (0, 0, 1, 1, 0, 0, 1)] * 50
    iv = bootstrap_intervals(mixed, 500)
    lo, hi = iv["relevance_accuracy"]
    assert 0.35 < lo < 0.5 < hi < 0.65
    lo, hi = iv["topics_f1"]
    assert lo < 2 / 3 < hi
    assert bootstrap_intervals(mixed, 500) == iv


def test_development_set_quality_does_not_regress(shipped):
    report = evaluate(shipped, _dev())
    assert report["n"] >= 200
    assert report["relevance_accuracy"] >= 0.95
    assert report["regions"]["micro"]["f1"] >= 0.88
    assert report["topics"]["micro"]["f1"] >= 0.74


def _labelled(name):
    return [json.loads(line) for line in (DATA / "labelled" / f"{name}.jsonl").read_text().splitlines()
            if line.strip()]


def test_tuning_sets_together_meet_the_issue_targets(shipped):
    # dev, test and test2 have all been looked at while tuning; test3 is the held-out figure
    report = evaluate(shipped, _labelled("dev") + _labelled("test") + _labelled("test2"))
    assert report["relevance_accuracy"] >= 0.95
    assert report["regions"]["micro"]["f1"] >= 0.90
    assert report["topics"]["micro"]["f1"] >= 0.80


@pytest.mark.parametrize(("title", "lede", "lang", "topic"), [
    # real headlines and ledes from tests/data/labelled (test2.jsonl, dev.jsonl)
    ("Кабмин Литвы утвердил разворот мигрантов, отказался от исключения", "", "ru", "pushbacks"),
    ("Seeking Safety in Cyprus, They’re Stuck in Island’s U.N. Buffer Zone",
     "Nearly 30 asylum seekers are stuck in the United Nations-controlled buffer zone between the "
     "Turkish-occupied north of Cyprus and the internationally recognized south.", "en", "pushbacks"),
    ("Con il voto di oggi il Parlamento europeo ha completato tutti i fascicoli del patto di "
     "migrazione e asilo", "", "it", "asylum-policy"),
    ("Spreidingswet: zo worden de 96.000 extra opvangplekken verdeeld over het land", "", "nl",
     "asylum-policy"),
])
def test_common_phrasings_of_a_topic_are_recognised(shipped, title, lede, lang, topic):
    result = matcher_for(shipped).tag(title, lede, None, lang)
    assert result.relevant and topic in result.slugs("topic")


@pytest.mark.parametrize(("title", "lede", "lang", "topic"), [
    ("Cyprus is increasing security along the buffer zone to stop migrants from arriving.", "", "en",
     "arrivals"),
    ("USC police have begun relocating migrants to the Lipa camp near BIhać", "", "en",
     "relocation-resettlement"),
    ("Statistiques d’asile – bilan 2017", "", "fr", "deaths-missing"),
    ("90 migrants rescued, 27 allowed to disembark in Malta",
     "A group of 27 migrants, consisting of minors and women, were allowed to disembark in Malta on "
     "Tuesday night after being rescued, the Armed Forces of Malta (AFM) said Wednesday in a statement.",
     "en", "children"),
])
def test_look_alike_phrasings_do_not_give_the_topic(shipped, title, lede, lang, topic):
    # a policy aim is not an arrival figure, a transfer to a camp is not EU relocation,
    # an annual report ("bilan") is not a death toll, minors named in passing are not the story
    assert topic not in matcher_for(shipped).tag(title, lede, None, lang).slugs("topic")


# Languages without term lists of their own (tr, hu, cs, pt, lt, sl, ...) are matched with every
# list; their own words sit in `terms.any` (docs/taxonomy.md, "Languages without lists").
_OWN_LISTS = {"en", "nl", "fr", "de", "it", "es", "pl", "el", "hr", "bs", "sr"}


@pytest.mark.parametrize(("lang", "title_start"), [
    # real items of test3.jsonl (tuning data): each must get its labelled topics
    ("tr", "Ege Denizi'nde düzensiz göçmen hareketliliği"),          # pushed back, rescued
    ("hu", "Illegális migránsokat tartóztattak fel Röszkénél"),     # escorted back to the fence
    ("cs", "Italská pobřežní stráž ve Středomoří zachránila"),      # rescue
    ("pt", "Seis corpos são encontrados na Sicília"),               # bodies recovered
    ("lt", "VSAT: pasienyje su Baltarusija apgręžti du"),           # turned back
    ("sl", "Ljubljana, 30. maja - Slovenski policisti"),            # illegal crossings
])
def test_languages_without_lists_are_tagged_from_their_own_words(shipped, lang, title_start):
    item = next(r for r in _labelled("test3") if r["title"].startswith(title_start))
    assert item["lang"] == lang and lang not in _OWN_LISTS
    result = matcher_for(shipped).tag(item["title"], item["lede"], None, lang)
    assert result.relevant
    assert set(item["topics"]) <= set(result.slugs("topic"))
    assert set(item["regions"]) <= set(result.slugs("region"))


def test_tuning_items_in_languages_without_lists_are_tagged_like_the_others(shipped):
    items = [r for r in _labelled("test3") if r["lang"] not in _OWN_LISTS]
    assert len({r["lang"] for r in items}) >= 8
    report = evaluate(shipped, items)
    assert report["relevance_accuracy"] >= 0.95
    assert report["regions"]["micro"]["f1"] >= 0.90
    assert report["topics"]["micro"]["f1"] >= 0.78


@pytest.mark.parametrize(("title", "lede", "lang"), [
    ("Kuş göçü başladı: leylekler Afrika'ya göç yolunda", "", "tr"),                 # bird migration
    ("Migração de dados para a nuvem: o que as empresas precisam saber", "", "pt"),  # data migration
    ("Policie dopadla uprchlého vězně", "Vězeň utekl z věznice v noci.", "cs"),      # escaped prisoner
    ("Nyári táborok gyerekeknek a Balatonnál", "", "hu"),                          # summer camps
])
def test_look_alikes_in_languages_without_lists_are_not_relevant(shipped, title, lede, lang):
    assert not matcher_for(shipped).tag(title, lede, None, lang).relevant


@pytest.mark.parametrize("title_start", [
    "Jak przygotować migrację firmy do ERP",          # pl: moving a company's ERP to the cloud
    "Jak przeprowadzić migrację danych",              # pl: data migration
    "SAP S/4HANA Migration: Strategien",              # de: an SAP system migration
    "La migración de rapaces",                        # es: raptors crossing the Strait
    "La Migración de aves en el Estrecho",            # es: birds crossing the Strait
])
def test_system_and_bird_migration_is_not_relevant(shipped, title_start):
    item = next(r for r in _labelled("test8") if r["title"].startswith(title_start))
    assert not item["relevant"]
    assert not matcher_for(shipped).tag(item["title"], item["lede"], None, item["lang"]).relevant


@pytest.mark.parametrize(("title_start", "relevant"), [
    ("Gela: al via le celebrazioni del 75esimo", False),     # it: the Allied landing of 1943
    ("The Great Migration/River Crossings", False),          # en: wildebeest
    ("Przemytnicy papierosów wpadli", False),                # pl: cigarette smuggling
    ("FAQ: Windows 10 to Windows 11 migration", False),      # en: an operating system
    ("In Berlin landet eine Chartermaschine mit 155", True),  # de: Afghans flown in, no migration word
])
def test_test9_homonyms_and_admission_flights(shipped, title_start, relevant):
    item = next(r for r in _labelled("test9") if r["title"].startswith(title_start))
    assert item["relevant"] is relevant
    assert matcher_for(shipped).tag(item["title"], item["lede"], None, item["lang"]).relevant is relevant


@pytest.mark.parametrize(("title_start", "relevant"), [
    ("Julian Assange se halla a la espera", False),          # es: diplomatic asylum in an embassy
    ("Les cérémonies autour du 80ème anniversaire", False),  # fr: the Dunkirk evacuation of 1940
    ("Glasaal onderzoek migratie knelpunt", False),          # nl: glass eels
    ("En Belgique, un élu nationaliste condamné", True),     # fr: humanitarian visas sold
    ("La storica visita di Papa Francesco", True),           # it: "viaggi della speranza"
])
def test_test10_diplomatic_asylum_and_humanitarian_visas(shipped, title_start, relevant):
    item = next(r for r in _labelled("test10") if r["title"].startswith(title_start))
    assert item["relevant"] is relevant
    assert matcher_for(shipped).tag(item["title"], item["lede"], None, item["lang"]).relevant is relevant


# Real tuning items (test8, test9) whose concept had no rule in some language; each names the tags
# it must get (+slug) and must not get (-slug).
@pytest.mark.parametrize("lang,title,lede,expected", [
    # it: a Libyan patrol boat firing at a migrant boat is a pushback, not an externalisation deal
    ("it", "Libia, una motovedetta spara colpi di mitraglia su un barcone pieno di migranti.",
     "Poi, non contenta, prova a speronarlo in alto mare.", ["+pushbacks", "-externalisation"]),
    # es: rubber bullets fired at swimmers, and a trial
    ("es", "16 guardias civiles serán juzgados por las muertes en El Tarajal en 2014",
     "El Juzgado de Instrucción número 6 de Ceuta abre juicio oral a 16 agentes de la Guardia Civil "
     "por posibles delitos de homicidio por imprudencia grave y de denegación de auxilio por su "
     "actuación en El Tarajal en 2014, cuando dispararon balas de goma a un grupo de migrantes que se "
     "encontraba en el mar, con el resultado de 15 personas muertas.", ["+pushbacks", "+courts"]),
    # nl: sent back to their country of origin is a return, not a pushback
    ("nl", 'Francken bevestigt: "Er zijn al Soedanezen teruggestuurd"',
     "Staatssecretaris voor Asiel en Migratie Theo Francken (N-VA) bevestigt dat er al Soedanezen zijn "
     "teruggestuurd naar hun land van herkomst, na de omstreden identificatiemissie van de Soedanese "
     "administratie in ons land.", ["+returns", "-pushbacks"]),
    # en: officers charged over a shipwreck
    ("en", "Seventeen members of Greece’s Hellenic Coast Guard have been charged over the 2023 Pylos "
     "shipwreck, one of the deadliest migrant boat disasters in the Mediterranean in the past decade.",
     "The Adriana, an overcrowded fishing trawler carrying up to 750 migrants—many of them Syrian "
     "refugees fleeing conflict and poverty—sank on June 14, 2023, shocking the international community.",
     ["+courts", "+deaths-missing"]),
    # fr: return hubs in third countries
    ("fr", "Les « hubs de retour », la nouvelle idée de l’UE pour reléguer les migrants aux frontières de "
     "l’Europe", "Face à la pression des partis d’extrême droite, l’Europe va durcir sa politique "
     "d’immigration.", ["+externalisation"]),
    # de: prevented from crossing the border
    ("de", "Lettland hat seit Ausrufung des Notstands an der Grenze zum Nachbarland Belarus über 1.000 "
     "Menschen am illegalen Übertreten der Grenze gehindert.", "Das EU-Mitgliedsland hatte am 10. August "
     "wegen des Andrangs von Migranten aus dem Nahen Osten an der Grenze zu Belarus für drei Monate einen "
     "Ausnahmezustand ausgerufen.", ["+pushbacks"]),
    # sr: the Drina in its case forms is the Bosnia-Serbia border
    ("sr", "Od četiri migranta koji su juče pokušali da pređu reku Drinu između Malog Zvornika i Zvornika, "
     "uspeo je samo jedan, javlja dopisnik Srne sa lica mesta.", "Migranti su u 16.40 časova, držeći se "
     "međusobno i pomoću štapova, uspeli da dođu do sredine reke, gde je matica jednog ponela nizvodno, pa "
     "je uspeo da dođe do leve obale Drine.", ["+bosnia", "+arrivals"]),
    # nl: Flemish civic integration is Belgian
    ("nl", "Op 1 maart 2022 wijzigde de Vlaamse Regering het inburgeringsdecreet.",
     "Door die wijziging breidde het inburgeringstraject ondertussen uit met twee onderdelen, naast de "
     "bestaande onderdelen maatschappelijke oriëntatie en Nederlands leren met:",
     ["+belgium", "-netherlands", "+integration"]),
])
def test_tuning_concepts_in_every_language(shipped, lang, title, lede, expected):
    result = matcher_for(shipped).tag(title, lede, None, lang)
    tags = result.slugs("region") | result.slugs("topic")
    assert result.relevant
    for want in expected:
        assert (want[1:] in tags) is (want[0] == "+"), (want, sorted(tags))


def test_distractors_are_not_relevant(shipped):
    matcher = matcher_for(shipped)
    distractors = [r for r in _dev() if not r["relevant"]]
    assert len(distractors) >= 20
    wrong = [r["title"] for r in distractors
             if matcher.tag(r["title"], r.get("lede"), None, r["lang"]).relevant]
    assert len(wrong) <= len(distractors) * 0.1, wrong


def test_hostile_text_is_tagged_in_bounded_time(shipped):
    matcher = matcher_for(shipped)
    megabyte = ("Migrants\u200b rescued &amp; <i>Lampedusa</i> Λαμπεντούζα Białoruś 🚤 " * 20000)[:1_000_000]
    started = time.process_time()
    result = matcher.tag("<b>Migranti</b> &#8211; Lampe\u200bdusa", "مهاجرون &lt;script&gt;", megabyte, "it")
    assert time.process_time() - started < 2.0
    assert result.relevant and "lampedusa" in result.slugs("region")


def test_only_the_start_of_the_text_is_read(shipped):
    filler = "Il sindaco ha parlato del bilancio comunale e delle strade. " * 60
    result = matcher_for(shipped).tag("Consiglio comunale", "", filler + " migranti naufragio Lampedusa",
                                      "it")
    assert len(filler) > 2000 and not result.relevant


# -- stored items ------------------------------------------------------------------------------

def _items(rows, source="news", prefix="item"):
    return [{"url": f"https://news.example/{prefix}/{i}", "url_keys": [f"news.example/{prefix}/{i}"],
             "source": source, "title": r["title"], "summary": r.get("lede") or "", "text": "",
             "declared_language": r.get("declared", "en"), "published": "2026-11-30T08:00:00Z",
             "fetched_at": "2026-11-30T09:00:00Z", "full_text": 0} for i, r in enumerate(rows)]


def test_process_items_stores_language_relevance_tags_and_evidence(db, config):
    rows = [r for r in _dev() if r["relevant"] and "lampedusa" in r["regions"]][:3]
    rows += [r for r in _dev() if not r["relevant"]][:2]
    ids = [i for i, _ in save_items(db, _items(rows))]
    process_items(db, config, ids)
    stored = {r["id"]: r for r in db.query("SELECT * FROM items")}
    for item_id, row in zip(ids, rows, strict=True):
        assert stored[item_id]["language"] == row["lang"]
        assert stored[item_id]["declared_language"] == "en"
        assert stored[item_id]["relevant"] == int(row["relevant"])
        assert stored[item_id]["tagged_at"]
    tags = list(db.query("SELECT * FROM item_tags WHERE item_id = ?", [ids[0]]))
    slugs = {(t["kind"], t["tag"]) for t in tags}
    assert {("region", "lampedusa"), ("region", "central-med")} <= slugs
    evidence = json.loads(next(t for t in tags if t["tag"] == "lampedusa")["evidence"])
    assert evidence[0]["term"].lower().startswith("lampedus")
    assert evidence[0]["field"] in ("title", "summary")
    for item_id in ids[3:]:
        assert not list(db.query("SELECT * FROM item_tags WHERE item_id = ?", [item_id]))


def test_reprocessing_replaces_old_tags(db, config):
    rows = [r for r in _dev() if r["relevant"] and r["regions"]][:1]
    ids = [i for i, _ in save_items(db, _items(rows))]
    db.execute("INSERT INTO item_tags VALUES (?, 'topic', 'courts', 9, '[]')", [ids[0]])
    process_items(db, config, ids)
    process_items(db, config, ids)
    tags = [t["tag"] for t in db.query("SELECT tag FROM item_tags WHERE item_id = ?", ids)]
    assert "courts" not in tags or rows[0]["topics"].count("courts")
    assert len(tags) == len(set(tags))


def test_source_defaults_apply_only_to_relevant_items(tmp_path):
    path = write_config(tmp_path, sources=[{"name": "boats", "url": "http://127.0.0.1:9/feed",
                                            "kind": "feed", "regions": ["aegean-islands"],
                                            "topics": ["search-rescue"]}])
    config = load_config(path)
    db = open_db(config.storage.database)
    try:
        relevant = [r for r in _dev() if r["relevant"] and "central-med" in r["regions"]][:1]
        other = [r for r in _dev() if not r["relevant"]][:1]
        ids = [i for i, _ in save_items(db, _items(relevant + other, source="boats"))]
        process_items(db, config, ids)
        first = {t["tag"]: json.loads(t["evidence"]) for t in
                 db.query("SELECT tag, evidence FROM item_tags WHERE item_id = ?", [ids[0]])}
        assert first["aegean-islands"][0]["field"] == "source"
        assert "eastern-med" in first and "search-rescue" in first
        assert not list(db.query("SELECT * FROM item_tags WHERE item_id = ?", [ids[1]]))
    finally:
        db.close()


def _labelled_by_title(name, start):
    return next(r for r in _labelled(name) if r["title"].startswith(start))


def test_a_belgian_or_dutch_outlet_places_an_item_no_rule_places(shipped, db, config):
    # Real items: De Tijd on winter shelter for "all asylum seekers", NOS on the Dutch
    # bed-bath-bread deal, and La DH on Sfax departures (placed by the rules: stays there).
    tijd = _labelled_by_title("dev", "Met de winter in aantocht doemt opnieuw")
    nos = _labelled_by_title("test9", "Uitgeprocedeerde asielzoekers mogen worden opgevangen")
    sfax = _labelled_by_title("test2", "Sfax est cette année")
    matcher, settings = matcher_for(shipped), shipped.settings

    def regions(row, url):
        return matcher.tag(row["title"], row["lede"], None, row["lang"],
                           home=settings.home_region_of(url)).slugs("region")

    assert regions(tijd, "https://www.tijd.be/politiek/x.html") == {"belgium"}
    assert regions(tijd, "https://www.example.com/x.html") == set()  # no country, no guess
    assert regions(nos, "https://nos.nl/artikel/1") == {"netherlands"}
    assert "belgium" not in regions(sfax, "https://www.dhnet.be/actu/monde/x")
    assert "central-med" in regions(sfax, "https://www.dhnet.be/actu/monde/x")

    # at ingest the stored address decides (data only: nothing is fetched)
    item = {**_items([tijd])[0], "url": "https://www.tijd.be/politiek/winter",
            "url_keys": ["tijd.be/politiek/winter"]}
    ids = [i for i, _ in save_items(db, [item])]
    process_items(db, config, ids)
    (tag, evidence), = db.execute("SELECT tag, evidence FROM item_tags WHERE item_id = ? AND "
                                  "kind = 'region'", ids).fetchall()
    assert tag == "belgium" and json.loads(evidence) == [{"term": ".be", "field": "home",
                                                          "weight": 0}]


def test_a_source_about_migration_makes_every_item_relevant(tmp_path):
    # A real test10 item whose title and lede name no migrant: "Un monumento a Lampedusa per i
    # morti del Mediterraneo". From a source about migration it is relevant; from a paper, not.
    path = write_config(tmp_path, sources=[
        {"name": "council", "url": "http://127.0.0.1/feed", "relevant": True,
         "regions": ["eastern-med"]},
        {"name": "paper", "url": "http://127.0.0.1/other"}])
    config = load_config(path)
    row = _labelled_by_title("test10", "Un monumento a Lampedusa per i morti")
    items = [{**item, "source": source} for item, source in
             zip(_items([row, row], prefix="p"), ("council", "paper"), strict=True)]
    db = open_db(config.storage.database)
    try:
        ids = [i for i, _ in save_items(db, items)]
        process_items(db, config, ids)
        relevant = dict(db.execute("SELECT source, relevant FROM items").fetchall())
        assert relevant == {"council": 1, "paper": 0}
        tags = db.execute("SELECT tag, evidence FROM item_tags WHERE item_id = ?",
                          [ids[0]]).fetchall()
        assert ("eastern-med", json.dumps([{"term": "source default", "field": "source",
                                            "weight": 0}])) in tags
    finally:
        db.close()
    bad = write_config(tmp_path / "bad", sources=[
        {"name": "council", "url": "http://127.0.0.1/feed", "relevant": "yes"}])
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "relevant" in str(info.value)
