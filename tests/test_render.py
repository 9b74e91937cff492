"""Rendering an issue: MJML structure, escaping, size, personalisation, text part, template errors."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import lxml.html
import pytest
from mjml import mjml2html

from monitor import digest, render
from monitor.errors import TemplateError
from monitor.store import open_db
from tests.fixtures_digest import NOW, WEEK, add_hostile_story, fill_week, write_digest_config
from tests.helpers import CORPUS

MJML_PAIRS = CORPUS / "mjml" / "mrml-compare"


def _issue(db, config):
    return digest.draft_issue(db, config, WEEK, now=NOW)["id"]


def _doc(html: str):
    return lxml.html.fromstring(html)


def _stories(doc):
    return doc.xpath('//*[contains(concat(" ", @class, " "), " story ")]//h3')


def test_mail_has_the_sections_and_stories_in_order(digest_db, digest_config):
    issue_id = _issue(digest_db, digest_config)
    view = digest.issue_view(digest_db, digest_config, issue_id)
    message = render.render_issue(digest_config, digest_db, issue_id)
    doc = _doc(message.html)
    assert [h.get("id") for h in doc.xpath("//h2")] == [s["slug"] for s in view["sections"] if s["entries"]]
    assert [h.text_content() for h in doc.xpath("//h2")][:2] == ["Mediterranean", "Balkan route"]
    headlines = [h.text_content() for h in _stories(doc)]
    assert headlines == [e["headline"] for s in view["sections"] for e in s["entries"]]
    first = view["sections"][0]["entries"][0]
    link = _stories(doc)[0].xpath(".//a")[0]
    assert link.get("href") == first["url"]
    assert message.subject == "Border Monitor Weekly – week 49, 2026"
    assert message.web_url == "http://127.0.0.1:8080/digest/2026-W49"
    assert "Also reported by:" in message.html


def test_scraped_html_and_javascript_links_are_neutralised(digest_db, digest_config):
    add_hostile_story(digest_db)
    issue_id = _issue(digest_db, digest_config)
    view = digest.issue_view(digest_db, digest_config, issue_id)
    hostile = view["sections"][0]["entries"][0]
    assert "Boat capsizes" in hostile["headline"]
    digest.set_summary(digest_db, digest_config, issue_id, hostile["story"], "anna",
                       'Curator wrote <script>alert("x")</script> & <a href="javascript:x()">this</a>.')
    message = render.render_issue(digest_config, digest_db, issue_id)
    web = render.render_web(digest_config, digest_db, issue_id)
    for page in (message.html, web):
        doc = _doc(page)
        assert doc.xpath("//script") == []
        assert not doc.xpath("//*[@onerror]") and not doc.xpath("//img")
        hrefs = [a.get("href") for a in doc.xpath("//a") if not a.get("href").startswith("#")]
        assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs)
        texts = doc.text_content()
        assert 'Curator wrote <script>alert("x")</script> & <a href="javascript:x()">this</a>.' in texts
        # The story whose own link is javascript: is shown without a link; its safe co-report stays.
        story = next(h for h in doc.xpath("//h3") if "Boat capsizes" in h.text_content())
        assert story.xpath(".//a") == []
        assert "https://www.bbc.co.uk/news/a?x=1&y=<2>" in hrefs
    assert not re.search(r'href="javascript:', message.html + web, re.IGNORECASE)
    # In the text part links stand alone on their lines: none of them is javascript:.
    links = re.findall(r"^\s+(?:- [^:]+: )?([a-z][a-z0-9+.-]*:\S+)$", message.text, re.MULTILINE)
    assert links and all(link.startswith(("http://", "https://")) for link in links)


def test_sixty_stories_stay_under_the_gmail_clipping_size(tmp_path):
    sections = [{"slug": f"s{i}", "title": f"Section {i}", "regions": [region], "max": 20}
                for i, region in enumerate(["central-med", "balkan-route", "eastern-border", "western-med"])]
    config = write_digest_config(tmp_path, sections=sections)
    db = open_db(config.storage.database)
    fill_week(db, config, stories=60, tags=[("central-med", "arrivals"), ("balkan-route", "pushbacks"),
                                             ("belarus-border", "pushbacks"), ("canary-islands", "arrivals")])
    issue_id = _issue(db, config)
    message = render.render_issue(config, db, issue_id)
    assert len(_stories(_doc(message.html))) == 60
    size = len(message.html.encode("utf-8"))
    assert size < 102_000, size
    assert render.check_size(config, db, issue_id) == size
    db.close()


def test_no_remote_fonts_or_stylesheets(digest_db, digest_config):
    html = render.render_issue(digest_config, digest_db, _issue(digest_db, digest_config)).html
    assert "fonts.googleapis" not in html and "@import" not in html
    assert _doc(html).xpath("//link[@rel='stylesheet']") == []
    assert "Helvetica, Arial, sans-serif" in html


def test_text_part_is_built_from_the_data(digest_db, digest_config):
    issue_id = _issue(digest_db, digest_config)
    digest.set_intro(digest_db, digest_config, issue_id, "anna", "Dear members,\r\n\r\nA hard week.")
    view = digest.issue_view(digest_db, digest_config, issue_id)
    text = render.render_issue(digest_config, digest_db, issue_id).text
    assert "<" not in text.replace("<2>", "")
    assert "Dear members,\n\nA hard week." in text
    assert "MEDITERRANEAN\n=============" in text
    entry = view["sections"][0]["entries"][0]
    assert entry["url"] in text
    assert "Also reported by:" in text
    flat = " ".join(text.split())
    for section in view["sections"]:
        for e in section["entries"]:
            assert " ".join(e["headline"].split()) in flat
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 80


def test_personalised_sections_plus_eu_developments(digest_db, digest_config):
    issue_id = _issue(digest_db, digest_config)

    def sections(subscriber):
        html = render.render_issue(digest_config, digest_db, issue_id, subscriber,
                                   unsubscribe_url="https://x.example/u", preferences_url="https://x.example/p").html
        return [h.get("id") for h in _doc(html).xpath("//h2")]

    everything = sections(None)
    assert len(everything) == 8
    assert sections({"regions": [], "topics": []}) == everything
    assert sections({"regions": ["lampedusa"], "topics": []}) == ["mediterranean", "eu-policy"]
    assert sections({"regions": ["channel"], "topics": ["externalisation"]}) == ["channel", "external",
                                                                                   "eu-policy"]
    assert sections({"regions": ["eastern-border"], "topics": []}) == ["eastern-borders", "eu-policy"]


def test_personal_links_are_substituted_escaped_and_the_cache_follows_edits(digest_db, digest_config):
    issue_id = _issue(digest_db, digest_config)
    sub = {"regions": [], "topics": []}
    one = render.render_issue(digest_config, digest_db, issue_id, sub,
                              unsubscribe_url='https://x.example/u?t=a&b="1"', preferences_url="https://x.example/p?t=a")
    two = render.render_issue(digest_config, digest_db, issue_id, sub,
                              unsubscribe_url="https://x.example/u?t=b", preferences_url="https://x.example/p?t=b")
    assert 'href="https://x.example/u?t=a&amp;b=&#x27;' not in one.html
    assert 'href="https://x.example/u?t=a&amp;b=%221%22"' in one.html or \
        'href="https://x.example/u?t=a&amp;b=&quot;1&quot;"' in one.html
    assert "Unsubscribe: https://x.example/u?t=b" in two.text
    assert one.html.replace("t=a&amp;b=&quot;1&quot;", "t=b").replace("p?t=a", "p?t=b") == two.html
    first = digest.issue_view(digest_db, digest_config, issue_id)["sections"][0]["entries"][0]
    digest.set_headline(digest_db, digest_config, issue_id, first["story"], "anna", "Edited headline")
    three = render.render_issue(digest_config, digest_db, issue_id, None)
    assert "Edited headline" in three.html and "Edited headline" in three.text


def test_test_send_is_marked(digest_db, digest_config):
    message = render.render_issue(digest_config, digest_db, _issue(digest_db, digest_config), test=True)
    assert message.subject.startswith("[TEST] ")
    assert "TEST SEND" in message.html and "TEST SEND" in message.text


def _broken_templates(tmp_path, name, line_no, text):
    folder = tmp_path / "templates"
    shutil.copytree(render.BUNDLED_TEMPLATES, folder)
    path = folder / name
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("name,line,text,message", [
    ("partials/_story.mjml", 1, "<mj-text>{{ entry.no_such_field }}</mj-text>", "no_such_field"),
    ("digest.mjml", 4, "{% if intro %}", "Unexpected end of template|endif|Encountered unknown tag"),
    ("digest.txt", 8, "{{ title | nofilter }}", "nofilter"),
])
def test_template_errors_name_the_template_and_line(tmp_path, name, line, text, message):
    folder = _broken_templates(tmp_path, name, line, text)
    config = write_digest_config(tmp_path, templates=str(folder))
    db = open_db(config.storage.database)
    fill_week(db, config, stories=10)
    issue_id = _issue(db, config)
    render.clear_cache()
    with pytest.raises(TemplateError) as caught:
        render.render_issue(config, db, issue_id)
    error = caught.value
    assert error.template == name
    assert re.search(message, error.message)
    if name != "digest.mjml":
        assert error.line == line
        assert f"{name}, line {line}" in str(error)
    else:
        assert error.line is not None
    db.close()


def test_invalid_mjml_is_a_template_error():
    with pytest.raises(TemplateError, match="digest.mjml: the rendered MJML is not valid"):
        render.compile_mjml("<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-column></mjml>")
    bad = (CORPUS / "mjml" / "mrml-error" / "mj-head-unknown-tag.mjml").read_text(encoding="utf-8")
    with pytest.raises(TemplateError, match=r"unexpected element .* rendered line \d+: <mj-"):
        render.compile_mjml(bad)


class _Structure(HTMLParser):
    """Tags with their links, and visible text, outside comments (MSO conditionals are comments)."""

    def __init__(self):
        super().__init__()
        self.out: list = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.out.append((tag, attrs.get("href"), attrs.get("src")))

    def handle_data(self, data):
        if data.strip() and self.lasttag != "style":
            self.out.append(" ".join(data.split()))


def _structure(html: str) -> list:
    parser = _Structure()
    parser.feed(html)
    return parser.out


@pytest.mark.parametrize("name", ["mj-section", "mj-column", "mj-text", "mj-text-class", "mj-attributes",
                                  "mj-style", "mj-preview", "mj-title", "mj-body-background-color",
                                  "mj-section-background-color", "mj-section-padding"])
def test_mjml_python_matches_the_reference_compiler_structure(name):
    source = (MJML_PAIRS / f"{name}.mjml").read_text(encoding="utf-8")
    reference = (MJML_PAIRS / f"{name}.html").read_text(encoding="utf-8")
    assert _structure(mjml2html(source)) == _structure(reference)


def test_web_version_is_a_plain_page_with_every_section(digest_db, digest_config):
    issue_id = _issue(digest_db, digest_config)
    page = render.render_web(digest_config, digest_db, issue_id)
    doc = _doc(page)
    assert len(doc.xpath("//article[@class='story']")) == digest.issue_view(
        digest_db, digest_config, issue_id)["story_count"]
    assert [a.get("href") for a in doc.xpath("//nav//a")][0] == "#mediterranean"
    assert "unsubscribe" not in page.lower()
    assert Path(render.BUNDLED_TEMPLATES / "web.html").exists()
