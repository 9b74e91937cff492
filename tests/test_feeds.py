"""Feed, sitemap and address-policy decisions on real files: pure functions, no network."""

from __future__ import annotations

import gzip
import json
import re
import time

import feedparser
import pytest

from monitor.crawl.guard import AddressPolicy
from monitor.errors import ParseError
from monitor.feeds import html_to_text, parse_feed
from monitor.sitemaps import parse_sitemap
from tests.helpers import DATA

FEEDS = DATA / "feeds"
REAL_MANIFEST = json.loads((FEEDS / "real" / "MANIFEST.feedparser.json").read_text("utf-8"))[
    "files"
]
BROKEN_MANIFEST = json.loads((FEEDS / "malformed" / "MANIFEST.feedparser.json").read_text("utf-8"))[
    "files"
]
FEED_URL = "https://feeds.example.org/news/rss"
# feedparser's quadratic person-field regexes take ~30 s of CPU on 64 KB; real parses take < 1 s.
CPU_BOUND = 5.0


def _cpu_parse(data: bytes, **kwargs):
    start = time.process_time()
    try:
        return parse_feed(data, FEED_URL, **kwargs), time.process_time() - start
    except ParseError as exc:
        return exc, time.process_time() - start


_TAG = re.compile(r"<(p|br|div|img|script|td|tr|table|span|strong|em|ul|li|iframe)\b", re.I)


def _assert_clean(entries):
    for entry in entries:
        assert entry["link"].startswith(("http://", "https://")), entry["link"]
        for name in ("title", "summary"):
            text = entry[name]
            # Markup is gone (text that *shows* markup to a reader, &lt;a&gt;, may remain).
            assert not _TAG.search(text), text
            assert not any(ch in text for ch in "\x00\r\n\t"), repr(text)
        if entry["published"] is not None:
            assert entry["published"].endswith("Z") and len(entry["published"]) == 20


def test_manifests_list_every_file():
    for folder, manifest in (("real", REAL_MANIFEST), ("malformed", BROKEN_MANIFEST)):
        files = {p.name for p in (FEEDS / folder).iterdir() if p.is_file()} - {
            "MANIFEST.feedparser.json",
            "SOURCES.md",
        }
        assert files == set(manifest)
    assert len(REAL_MANIFEST) >= 40


@pytest.mark.parametrize("name", sorted(REAL_MANIFEST))
def test_real_feed_parses(name):
    expected = REAL_MANIFEST[name]
    data = (FEEDS / "real" / name).read_bytes()
    result, cpu = _cpu_parse(data)
    assert not isinstance(result, ParseError), result
    assert cpu < CPU_BOUND
    # Every real feed here has links on its entries, so nothing is dropped.
    assert len(result.entries) == expected["entries"] > 0
    _assert_clean(result.entries)
    assert result.entries[0]["title"] == html_to_text(expected["first_entry_title"], 1000)
    if expected["entries_with_parsed_date"] == expected["entries"]:
        assert all(e["published"] for e in result.entries)
    if expected["language"]:
        assert result.language == expected["language"][:2].lower()


def test_language_with_underscore_region():
    result = parse_feed((FEEDS / "real" / "feed-rs__rss_2.0_nbcny.xml").read_bytes(), FEED_URL)
    assert result.language == "en"


@pytest.mark.parametrize("name", sorted(REAL_MANIFEST))
def test_real_feed_text_decodes_without_replacement_characters(name):
    data = (FEEDS / "real" / name).read_bytes()
    theirs = feedparser.parse(data)
    # Only where the captured bytes themselves are readable (some feeds carry U+FFFD already).
    readable = not any(
        "\ufffd" in (e.get("title", "") + e.get("summary", "")) for e in theirs.entries
    )
    result = parse_feed(data, FEED_URL)
    if readable:
        assert not any("\ufffd" in e["title"] + e["summary"] for e in result.entries)


@pytest.mark.parametrize(
    ("name", "sample"),
    [
        ("miniflux__encoding_WINDOWS-1251.xml", "\u0430"),  # Cyrillic from windows-1251 bytes
        ("node-feedparser__iconv.xml", "\u0430"),
        ("feeder__golem-de.xml", "ü"),  # German from ISO-8859-1 bytes
        ("rss-parser__uolNoticias.rss", "ç"),  # Portuguese from windows-1252 bytes
        ("miniflux__urdu_UTF8.xml", "\u06cc"),  # Urdu
        ("feed-rs__rss_2.0_spiegel.xml", "ä"),
    ],
)
def test_declared_encodings_are_decoded(name, sample):
    entries = parse_feed((FEEDS / "real" / name).read_bytes(), FEED_URL).entries
    text = " ".join(e["title"] + " " + e["summary"] for e in entries)
    assert sample in text
    assert "\ufffd" not in text and "Ã" not in text


def test_latin1_feed_without_declaration_keeps_its_accents():
    name = "miniflux__no_encoding_ISO-8859-1.xml"
    entries = parse_feed((FEEDS / "malformed" / name).read_bytes(), FEED_URL).entries
    text = " ".join(e["title"] + " " + e["summary"] for e in entries)
    assert "é" in text and "\ufffd" not in text and "Ã©" not in text


@pytest.mark.parametrize("name", sorted(BROKEN_MANIFEST))
def test_malformed_feed_yields_entries_or_a_sentence(name):
    expected = BROKEN_MANIFEST[name]
    data = (FEEDS / "malformed" / name).read_bytes()
    result, cpu = _cpu_parse(data)
    assert cpu < CPU_BOUND
    if isinstance(result, ParseError):
        sentence = str(result)
        assert sentence[0].isupper() and sentence.endswith(".") and len(sentence) < 400
        assert "Traceback" not in sentence
        # Where feedparser reads entries, we must too (never fail a feed that has some).
        assert expected["entries"] == 0, f"{name}: feedparser finds {expected['entries']} entries"
        return
    _assert_clean(result.entries)
    # Never more than feedparser sees; fewer only when entries without http(s) link are skipped,
    # and then a warning says so.
    assert len(result.entries) <= max(expected["entries"], 1)
    if len(result.entries) < expected["entries"]:
        assert any("no http(s) link" in w for w in result.warnings), result.warnings


def test_html_page_served_as_a_feed():
    data = (FEEDS / "malformed" / "node-feedparser__notafeed.html").read_bytes()
    with pytest.raises(ParseError, match="returns a web page, not a feed"):
        parse_feed(data, FEED_URL)


def test_truncated_feed_is_salvaged():
    # Real Polish feed cut inside CDATA: feedparser still finds 8 entries, so must we.
    result = parse_feed((FEEDS / "real" / "fastfeedparser__osm-pl.xml").read_bytes(), FEED_URL)
    assert len(result.entries) == 8


def test_empty_body_is_a_sentence():
    with pytest.raises(ParseError, match="The feed is empty"):
        parse_feed(b"  \n", FEED_URL)


def _rss(item_xml: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{item_xml}</channel></rss>"
    ).encode()


def test_64_kb_author_field_parses_quickly():
    author = "A" * 65536
    data = _rss(
        f"<item><title>Boat arrives</title><link>https://example.org/a</link>"
        f"<author>{author}</author><dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>"
        f"{author}</dc:creator></item>"
    )
    result, cpu = _cpu_parse(data, content_type="application/rss+xml")
    assert not isinstance(result, ParseError), result
    assert cpu < 1.0
    assert result.entries[0]["title"] == "Boat arrives"
    assert len(result.entries[0]["author"] or "") <= 300


def test_titles_with_markup_and_unsafe_links():
    data = _rss(
        "<item><title>&lt;b&gt;Pushback&lt;/b&gt; at &amp;quot;Evros&amp;quot; "
        "&lt;script&gt;alert(1)&lt;/script&gt;</title><link>javascript:alert(1)</link>"
        "<guid isPermaLink='false'>x</guid></item>"
        "<item><title>Data link</title><link>data:text/html,hi</link></item>"
        "<item><title>&lt;i&gt;Rescue&lt;/i&gt; off Lampedusa</title>"
        "<link>/news/rescue?utm_source=rss</link></item>"
    )
    result = parse_feed(data, "https://example.org/feed")
    assert [e["title"] for e in result.entries] == ["Rescue off Lampedusa"]
    assert result.entries[0]["link"] == "https://example.org/news/rescue?utm_source=rss"
    assert any("2 feed entries had no http(s) link" in w for w in result.warnings)


@pytest.mark.parametrize(("name", "trailer", "kept_end"), [
    ("feeder__rss_theguardian.xml", "Continue reading",
     "to correct the name of the Saudi foreign minister."),
    ("node-feedparser__wapowellness.xml", "Read full article", "and its poor eating habits."),
    ("feeder__rdf_slashdot.xml", "Read more of this story at Slashdot",
     "the pharmacist in charge."),
    ("fastfeedparser__osm-pl.xml", "pochodzi z serwisu OpenStreetMap Polska",
     "przestrzennych udostępnionych ..."),
])
def test_read_more_links_and_site_credits_are_cut_from_real_summaries(name, trailer, kept_end):
    """What a feed appends to every summary ("Continue reading...", "The post X appeared first on
    Y.") is not the article: it would show in search results and digest summaries."""
    raw = feedparser.parse((FEEDS / "real" / name).read_bytes()).entries
    assert any(trailer in html_to_text(e.get("summary", "")) for e in raw)
    entries = parse_feed((FEEDS / "real" / name).read_bytes(), FEED_URL).entries
    summaries = [e["summary"] for e in entries]
    assert not any(trailer in s for s in summaries)
    assert summaries[0].endswith(kept_end)


@pytest.mark.parametrize(("summary", "stored"), [
    ("We read more", "We read more"),                        # a sentence that ends so stays
    ("He told them to read more books.", "He told them to read more books."),
    ("Texte. Lire la suite", "Texte."),
    ("Tekst. Czytaj dalej »", "Tekst."),
    ("Sbarchi. L'articolo Sbarchi a Lampedusa proviene da Il Fatto.", "Sbarchi."),
    ("Continue reading...", ""),
])
def test_read_more_is_cut_only_at_the_end_after_a_sentence(summary, stored):
    data = _rss(f"<item><title>T</title><link>https://example.org/a</link>"
                f"<description>{summary}</description></item>")
    assert parse_feed(data, "https://example.org/feed").entries[0]["summary"] == stored


def test_a_summary_of_read_more_links_is_cut_in_bounded_time():
    data = _rss("".join(f"<item><title>T{n}</title><link>https://example.org/{n}</link>"
                        f"<description>{'. Read more' * 400} The post x appeared first on y."
                        "</description>"
                        "</item>" for n in range(500)))
    result, cpu = _cpu_parse(data)
    assert len(result.entries) == 500 and cpu < CPU_BOUND


def test_absurd_dates_are_dropped():
    data = _rss(
        "<item><title>Old</title><link>https://example.org/1</link>"
        "<pubDate>Mon, 01 Jan 1900 00:00:00 GMT</pubDate></item>"
        "<item><title>Future</title><link>https://example.org/2</link>"
        "<pubDate>Mon, 01 Jan 2091 00:00:00 GMT</pubDate></item>"
        "<item><title>Good</title><link>https://example.org/3</link>"
        "<pubDate>Mon, 30 Nov 2026 10:00:00 +0100</pubDate></item>"
    )
    published = [e["published"] for e in parse_feed(data, FEED_URL).entries]
    assert published == [None, None, "2026-11-30T09:00:00Z"]


def test_huge_feed_is_capped_with_a_warning():
    items = "".join(
        f"<item><title>n{i}</title><link>https://example.org/{i}</link></item>"
        for i in range(20_000)
    )
    result, cpu = _cpu_parse(_rss(items), max_entries=500)
    assert len(result.entries) == 500
    assert any("20,000 entries" in w for w in result.warnings)
    assert cpu < CPU_BOUND


def test_billion_laughs_is_not_expanded():
    data = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>
<rss version="2.0"><channel><title>x</title><item><title>&h;</title>
<link>https://example.org/a</link></item></channel></rss>"""
    result, cpu = _cpu_parse(data)
    assert cpu < CPU_BOUND
    if not isinstance(result, ParseError):
        assert all(len(e["title"]) < 10_000 for e in result.entries)


# -- sitemaps -------------------------------------------------------------------------------------

NEWS_SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://www.rp.pl/polityka/art41756471-niemcy-stale-zamkniecie-granic</loc>
    <news:news><news:publication><news:name>Rzeczpospolita</news:name>
      <news:language>pl</news:language></news:publication>
      <news:publication_date>2025-02-02T21:52:43+01:00</news:publication_date>
      <news:title>Niemcy. Sta\xc5\x82e zamkni\xc4\x99cie granic jedynie
      kwesti\xc4\x85 czasu</news:title>
    </news:news></url>
  <url><loc>javascript:alert(1)</loc></url>
  <url><loc>/relative/story-2</loc></url>
</urlset>"""


def test_news_sitemap_entries():
    result = parse_sitemap(NEWS_SITEMAP, "https://www.rp.pl/sitemap-news.xml")
    assert [e["link"] for e in result.entries] == [
        "https://www.rp.pl/polityka/art41756471-niemcy-stale-zamkniecie-granic",
        "https://www.rp.pl/relative/story-2",
    ]
    first = result.entries[0]
    assert first["title"] == "Niemcy. Stałe zamknięcie granic jedynie kwestią czasu"
    assert first["published"] == "2025-02-02T20:52:43Z"
    assert first["language"] == "pl"
    assert result.children == []


def test_gzipped_news_sitemap():
    result = parse_sitemap(gzip.compress(NEWS_SITEMAP), "https://www.rp.pl/sitemap-news.xml.gz")
    assert len(result.entries) == 2


def test_sitemap_index_lists_children():
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://example.org/sitemap-news-1.xml</loc></sitemap>
  <sitemap><loc>/sitemap-news-2.xml</loc></sitemap>
  <sitemap><loc>file:///etc/passwd</loc></sitemap>
</sitemapindex>"""
    result = parse_sitemap(data, "https://example.org/sitemap.xml")
    assert result.entries == []
    assert result.children == [
        "https://example.org/sitemap-news-1.xml",
        "https://example.org/sitemap-news-2.xml",
    ]


def test_not_a_sitemap_is_a_sentence():
    with pytest.raises(ParseError, match="does not return a sitemap"):
        parse_sitemap(b"<html><body>hello</body></html>", "https://example.org/sitemap.xml")
    with pytest.raises(ParseError, match="damaged gzip"):
        parse_sitemap(b"\x1f\x8b\x09garbage-after-a-bad-method", "https://example.org/s.xml.gz")


def test_truncated_gzip_sitemap_is_a_sentence():
    with pytest.raises(ParseError, match="damaged gzip"):
        parse_sitemap(gzip.compress(NEWS_SITEMAP)[:40], "https://example.org/s.xml.gz")


# -- address policy -------------------------------------------------------------------------------

PUBLIC = ["8.8.8.8", "193.0.6.139", "2a00:1450:4001:80b::200e", "1.1.1.1"]
PRIVATE = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "169.254.169.254",
    "0.0.0.0",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:7f00:1",
    "224.0.0.1",
    "[::1]",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().ip_allowed(address)


@pytest.mark.parametrize("address", PRIVATE)
def test_private_and_local_addresses_are_refused(address):
    assert not AddressPolicy().ip_allowed(address)


def test_not_an_address_is_refused():
    assert not AddressPolicy().ip_allowed("example.org")


def test_172_outside_the_private_block_is_public():
    assert AddressPolicy().ip_allowed("172.32.0.1")
    assert AddressPolicy().ip_allowed("172.15.255.255")


def test_allow_hosts_by_ip_covers_the_ipv4_mapped_form():
    policy = AddressPolicy(["127.0.0.1"])
    assert policy.ip_allowed("127.0.0.1") and policy.ip_allowed("::ffff:127.0.0.1")
    assert not policy.ip_allowed("127.0.0.2") and not policy.ip_allowed("::1")


def test_allow_hosts_by_network():
    policy = AddressPolicy(["10.20.0.0/16", "fd00::/8"])
    assert policy.ip_allowed("10.20.3.4") and policy.ip_allowed("::ffff:10.20.3.4")
    assert policy.ip_allowed("fd00::5")
    assert not policy.ip_allowed("10.21.0.1") and not policy.ip_allowed("192.168.0.1")


def test_allow_hosts_by_mapped_network():
    policy = AddressPolicy(["::ffff:192.168.5.0/120"])
    assert policy.ip_allowed("192.168.5.9") and not policy.ip_allowed("192.168.6.9")


def test_allow_hosts_by_name():
    policy = AddressPolicy(["Intranet.Example.", "localhost"])
    assert policy.host_allowed("intranet.example") and policy.host_allowed("LOCALHOST")
    assert policy.check_url("http://intranet.example/feed") is None
    assert not policy.host_allowed("example.org")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/feed",
        "http://[::1]/feed",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_check_url_refuses_private_literals_with_a_sentence(url):
    reason = AddressPolicy().check_url(url)
    assert reason and "private or local network address" in reason and "allow_hosts" in reason


def test_check_url_scheme_and_names():
    policy = AddressPolicy()
    assert "not an http(s) address" in policy.check_url("file:///etc/passwd")
    assert "not an http(s) address" in policy.check_url("gopher://example.org/")
    assert policy.check_url("https://example.org/feed") is None  # names are judged on resolution
    assert policy.check_url("https://8.8.8.8/feed") is None
    assert AddressPolicy(["127.0.0.1"]).check_url("http://127.0.0.1:9/feed") is None


def test_only_allow_hosts_refuses_public_addresses_too():
    policy = AddressPolicy(["127.0.0.1"], only_listed=True)
    assert policy.ip_allowed("127.0.0.1") and not policy.ip_allowed("8.8.8.8")
    assert not policy.ip_allowed("2a00:1450:4001:80b::200e")
    reason = policy.check_url("https://8.8.8.8/feed")
    assert reason and "not in [crawl] allow_hosts" in reason and "only_allow_hosts" in reason
    assert policy.check_url("http://127.0.0.1:9/feed") is None


EMPTY_FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet week</title>'
    b"<link>https://example.org/</link></channel></rss>"
)


def test_valid_feed_with_no_entries_is_not_an_error():
    assert parse_feed(EMPTY_FEED, FEED_URL, content_type="application/rss+xml").entries == []


def test_valid_empty_feed_served_without_content_type():
    assert parse_feed(EMPTY_FEED, FEED_URL).entries == []
