"""Canonical URLs and dedupe keys: one article under many addresses is one row; bad links fail."""

from __future__ import annotations

import pytest

from monitor.urls import canonical_url, safe_url, trusted_canonical, url_key

ARTICLE = "https://www.infomigrants.net/en/post/61234/pushbacks-at-the-belarus-border"


@pytest.mark.parametrize(
    "variant",
    [
        ARTICLE,
        ARTICLE + "?utm_source=rss&utm_medium=feed&utm_campaign=weekly",
        ARTICLE + "?fbclid=IwAR0abc",
        ARTICLE + "?gclid=EAIaIQ&utm_content=x",
        ARTICLE.replace("https://", "http://"),
        ARTICLE.replace("www.", ""),
        ARTICLE.replace("https://www.", "http://"),
        ARTICLE + "/",
        ARTICLE + "#comments",
        ARTICLE + "/amp",
        ARTICLE + "/amp/",
        ARTICLE + "?amp=1",
        ARTICLE + "?outputType=amp",
        ARTICLE.replace("www.", "amp."),
        ARTICLE.replace("www.infomigrants.net", "WWW.InfoMigrants.NET"),
        ARTICLE.replace("www.infomigrants.net", "www.infomigrants.net:443"),
        ARTICLE.replace("https://www.infomigrants.net", "http://www.infomigrants.net:80"),
        "  " + ARTICLE + "\n",
    ],
)
def test_variants_of_one_article_share_one_key(variant):
    assert (
        url_key(variant)
        == url_key(ARTICLE)
        == "infomigrants.net/en/post/61234/pushbacks-at-the-belarus-border"
    )


def test_amp_html_variant():
    assert (
        canonical_url("https://www.ansa.it/sito/notizie/lampedusa.amp.html")
        == "https://www.ansa.it/sito/notizie/lampedusa.html"
    )
    assert url_key("https://ansa.it/sito/notizie/lampedusa.amp.html?utm_source=x") == url_key(
        "https://www.ansa.it/sito/notizie/lampedusa.html"
    )


def test_amp_path_segment_in_the_middle():
    assert (
        canonical_url("https://example.org/amp/news/story-1") == "https://example.org/news/story-1"
    )


def test_words_containing_amp_are_not_touched():
    for url in (
        "https://example.org/camp/moria-fire",
        "https://example.org/news/amplified",
        "https://example.org/champ",
    ):
        assert canonical_url(url) == url


def test_canonical_url_keeps_scheme_and_www_but_drops_noise():
    assert (
        canonical_url("HTTP://WWW.Example.ORG:80/News/Story/?utm_source=x#top")
        == "http://www.example.org/News/Story"
    )


def test_other_query_parameters_are_kept_and_sorted():
    url = "https://example.org/article?page=2&id=77&utm_medium=email&mc_cid=9&gclid=1"
    assert canonical_url(url) == "https://example.org/article?id=77&page=2"
    assert url_key(url) == url_key("https://example.org/article?page=2&id=77")
    # Different articles stay different.
    assert url_key("https://example.org/article?id=77") != url_key(
        "https://example.org/article?id=78"
    )


def test_path_case_is_significant_host_case_is_not():
    assert url_key("https://EXAMPLE.org/News") == url_key("https://example.org/News")
    assert url_key("https://example.org/News") != url_key("https://example.org/news")


def test_non_default_port_is_kept():
    assert canonical_url("http://example.org:8080/a/") == "http://example.org:8080/a"
    assert url_key("http://example.org:8080/a") != url_key("http://example.org/a")


def test_trailing_slash_and_root():
    assert canonical_url("https://example.org") == "https://example.org/"
    assert canonical_url("https://example.org/") == "https://example.org/"
    assert canonical_url("https://example.org//news//story//") == "https://example.org/news/story"


def test_idn_host_is_stored_in_ascii_form():
    assert canonical_url("https://bücher.de/grenze") == "https://xn--bcher-kva.de/grenze"
    assert url_key("https://BÜCHER.de/grenze") == url_key("https://xn--bcher-kva.de/grenze")
    assert url_key("https://www.ελλάδα.gr/νέα") == url_key("https://xn--hxakic4aa.gr/νέα")


def test_ipv6_literal():
    assert canonical_url("http://[::1]:8080/feed/") == "http://[::1]:8080/feed"


def test_relative_link_resolved_against_its_page():
    assert (
        canonical_url("../2026/story?utm_source=x", "https://example.org/news/index.html")
        == "https://example.org/2026/story"
    )


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        " JavaScript:alert(document.cookie)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "java\x00script:alert(1)",
        "\x01javascript:alert(1)",
        "\u200bjavascript:alert(1)",
        "java\u200cscript:alert(1)",
        "\ufeffjavascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "DATA:image/svg+xml,<svg onload=alert(1)>",
        "mailto:press@example.org",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "ftp://example.org/file",
        "http:///no-host",
        "https://example.org:99999/",
        "",
        "   ",
    ],
)
def test_unsafe_links_are_refused(link):
    assert safe_url(link) is None
    assert safe_url(link, "https://example.org/news/") is None
    assert canonical_url(link, "https://example.org/news/") is None
    assert url_key(link) is None


@pytest.mark.parametrize("value", [None, 42, b"https://example.org/", ["https://example.org/"]])
def test_non_text_is_refused(value):
    assert safe_url(value) is None


def test_control_and_zero_width_characters_are_removed_from_kept_links():
    assert safe_url("https://example.org/news/\u200bstory\x0a") == "https://example.org/news/story"
    assert safe_url("https://exa\u200dmple.org/a") == "https://example.org/a"


def test_protocol_relative_link_needs_a_base():
    assert safe_url("//example.org/story") is None
    assert (
        safe_url("//example.org/story", "https://feeds.example.org/rss")
        == "https://example.org/story"
    )


def test_trusted_canonical_on_the_same_site():
    page = "https://amp.example.org/news/story-1/amp"
    assert (
        trusted_canonical("https://www.example.org/news/story-1", page)
        == "https://www.example.org/news/story-1"
    )
    assert (
        trusted_canonical("/news/story-1", "https://example.org/n/1?x=1")
        == "https://example.org/news/story-1"
    )


@pytest.mark.parametrize(
    "canonical",
    [
        None,
        "",
        "https://other-site.org/news/story-1",  # another site: would merge unrelated rows
        "https://example.org/",  # the home page
        "https://example.org/a",  # too short to name an article
        "javascript:alert(1)",
        "data:text/html,hi",
    ],
)
def test_untrusted_canonical_links(canonical):
    assert trusted_canonical(canonical, "https://www.example.org/news/story-1") is None


def test_hashbang_routes_stay_distinct():
    # "#!" fragments route to different articles on AJAX-crawlable sites; plain fragments do not.
    one, two = "https://example.org/#!/news/1", "https://example.org/#!/news/2"
    assert canonical_url("https://example.org/?utm_source=x#!/news/1") == one
    assert canonical_url(one) != canonical_url(two)
    assert url_key(one) != url_key(two)
    assert url_key("http://www.example.org/#!/news/1") == url_key(one)
    assert canonical_url("https://example.org/news/1#section-2") == "https://example.org/news/1"
