"""The curation desk over HTTP: a curator drafts, curates, previews, test-sends and approves."""

from __future__ import annotations

import email
import re
from email import policy

import pytest

from monitor import digest
from tests.fixtures_digest import WEEK, add_hostile_story
from tests.fixtures_web import csrf_from

DESK = f"/desk/{WEEK}"


@pytest.fixture
def desk(site_web):
    """(web, mail, client): a signed-in curator and a drafted issue for 2026-W49."""
    web, mail = site_web
    web.add_user("cora", "curator")
    client = web.login("cora")
    response = client.post(f"{DESK}/draft", data={"csrf_token": csrf_from(client.get(DESK).text)})
    assert response.status_code == 303
    yield web, mail, client
    client.close()


def token(client) -> str:
    return csrf_from(client.get(DESK).text)


def issue_of(web) -> dict:
    return digest.issue_view(web.db, web.config, digest.find_issue(web.db, WEEK)["id"])


def section_stories(web, slug: str) -> list[int]:
    sections = issue_of(web)["sections"]
    return [e["story"] for s in sections if s["slug"] == slug for e in s["entries"]]


def entry_ids(html: str, slug: str) -> list[int]:
    """Story ids in the order the desk page shows them in one section."""
    start = html.index(f'data-section="{slug}"')
    end = html.index("</ol>", start)
    return [int(n) for n in re.findall(r'<li id="story-(\d+)"', html[start:end])]


def test_desk_is_for_curators_only(site_web):
    web, _ = site_web
    anonymous = web.client()
    response = anonymous.get(DESK)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    web.add_user("ana", "analyst")
    analyst = web.login("ana")
    assert analyst.get(DESK).status_code == 403
    assert analyst.post(f"{DESK}/draft", data={"csrf_token": csrf_from(analyst.get("/search").text)}
                        ).status_code == 403
    assert digest.find_issue(web.db, WEEK) is None


def test_an_undrafted_week_offers_to_draft_it(site_web):
    web, _ = site_web
    web.add_user("cora", "curator")
    client = web.login("cora")
    page = client.get(DESK)
    assert page.status_code == 200
    assert "There is no draft for 2026-W49 yet" in page.text
    response = client.post(f"{DESK}/draft", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "The draft was rebuilt from the archive" in page.text
    first = issue_of(web)["sections"][0]
    assert first["entries"] and first["entries"][0]["headline"] in page.text


def test_the_draft_is_shown_by_section_in_order(desk):
    web, _, client = desk
    page = client.get(DESK).text
    view = issue_of(web)
    positions = [page.index(f'id="sec-{s["slug"]}"') for s in view["sections"]]
    assert positions == sorted(positions)
    for section in view["sections"]:
        assert entry_ids(page, section["slug"]) == [e["story"] for e in section["entries"]]


def test_exclude_and_include_again(desk):
    web, _, client = desk
    slug = issue_of(web)["sections"][0]["slug"]
    story = section_stories(web, slug)[1]
    response = client.post(f"{DESK}/story/{story}/exclude", data={"csrf_token": token(client)})
    assert response.status_code == 303
    assert story not in section_stories(web, slug)
    page = client.get(DESK).text
    assert story not in entry_ids(page, slug)
    assert f'id="include-{story}"' in page  # back among the candidates, with an Include button
    client.post(f"{DESK}/story/{story}/include",
                data={"csrf_token": token(client), "section": slug})
    assert story in section_stories(web, slug)


def test_move_up_and_down_with_buttons(desk):
    web, _, client = desk
    slug = issue_of(web)["sections"][0]["slug"]
    before = section_stories(web, slug)
    assert len(before) >= 3
    client.post(f"{DESK}/story/{before[2]}/up", data={"csrf_token": token(client)})
    assert section_stories(web, slug)[:3] == [before[0], before[2], before[1]]
    client.post(f"{DESK}/story/{before[0]}/down", data={"csrf_token": token(client)})
    assert section_stories(web, slug)[:3] == [before[2], before[0], before[1]]
    # The first story's Up button is disabled, and pressing it anyway changes nothing.
    page = client.get(DESK).text
    first = section_stories(web, slug)[0]
    assert re.search(rf'id="up-{first}" disabled', page)
    client.post(f"{DESK}/story/{first}/up", data={"csrf_token": token(client)})
    assert section_stories(web, slug)[0] == first


def test_move_to_a_position_and_another_section(desk):
    """What the drag and drop sends: a position, optionally in another section."""
    web, _, client = desk
    sections = issue_of(web)["sections"]
    first, second = sections[0]["slug"], sections[1]["slug"]
    story = section_stories(web, first)[0]
    client.post(f"{DESK}/story/{story}/move",
                data={"csrf_token": token(client), "position": "2", "section": second})
    assert story not in section_stories(web, first)
    assert section_stories(web, second)[1] == story
    other = section_stories(web, second)[0]
    client.post(f"{DESK}/story/{other}/section",
                data={"csrf_token": token(client), "section": first})
    assert section_stories(web, first)[-1] == other


def test_edit_headline_and_summary_is_escaped(desk):
    web, _, client = desk
    slug = issue_of(web)["sections"][0]["slug"]
    story = section_stories(web, slug)[0]
    client.post(f"{DESK}/story/{story}/edit", data={
        "csrf_token": token(client), "headline": "Rescue <b>ship</b> & crew detained",
        "summary": "The crew was held for <script>x</script> two days."})
    entry = issue_of(web)["sections"][0]["entries"][0]
    assert entry["headline"] == "Rescue <b>ship</b> & crew detained"
    page = client.get(DESK).text
    assert "Rescue &lt;b&gt;ship&lt;/b&gt; &amp; crew detained" in page
    assert "<script>x</script>" not in page
    history = client.get(f"{DESK}/history").text
    assert "headline" in history and "summary" in history and "cora" in history


def test_an_empty_headline_is_refused_with_a_sentence(desk):
    web, _, client = desk
    story = section_stories(web, issue_of(web)["sections"][0]["slug"])[0]
    response = client.post(f"{DESK}/story/{story}/edit",
                           data={"csrf_token": token(client), "headline": " ", "summary": "x"})
    assert response.status_code == 400
    assert "needs a headline and a summary" in response.text


def test_intro_is_saved(desk):
    web, _, client = desk
    client.post(f"{DESK}/intro", data={"csrf_token": token(client),
                                       "intro": "A hard week.\r\n\r\nSecond paragraph."})
    assert issue_of(web)["intro"] == "A hard week.\n\nSecond paragraph."
    assert "Second paragraph." in client.get(DESK).text


def test_state_never_changes_on_get_and_forms_need_the_token(desk):
    web, _, client = desk
    story = section_stories(web, issue_of(web)["sections"][0]["slug"])[0]
    revision = digest.find_issue(web.db, WEEK)["revision"]
    actions = (f"{DESK}/story/{story}/exclude", f"{DESK}/approve", f"{DESK}/draft", f"{DESK}/test")
    for path in actions:
        assert client.get(path).status_code == 405
    response = client.post(f"{DESK}/story/{story}/exclude", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert digest.find_issue(web.db, WEEK)["revision"] == revision


def test_candidates_filter_by_region_topic_and_language(desk):
    web, _, client = desk
    everything = client.get(DESK).text
    total = int(re.search(r'id="candidate-count">(\d+) of (\d+)', everything).group(2))
    assert total == len(web.db.stories)
    page = client.get(DESK, params={"region": "balkan-route"}).text
    shown = [int(n) for n in re.findall(r'<li class="candidate[^"]*" id="candidate-(\d+)"', page)]
    expected = {s["story"] for s in web.db.stories if s["region"] == "balkan-route"}
    assert shown and set(shown) == expected
    page = client.get(DESK, params={"topic": "pushbacks", "language": "de"}).text
    shown = {int(n) for n in re.findall(r'id="candidate-(\d+)"', page)}
    candidates = digest.week_candidates(web.db, web.config, issue_of(web)["id"], topic="pushbacks",
                                        language="de")
    assert shown == {c["story"] for c in candidates}


def test_candidates_show_tags_evidence_and_also_reported_by(desk):
    web, _, client = desk
    clustered = next(s for s in web.db.stories if len(s["items"]) > 1)
    page = client.get(DESK).text
    start = page.index(f'id="candidate-{clustered["story"]}"')
    block = page[start:page.index("</li>\n", page.index("Why these tags", start))]
    label = web.config.taxonomy.topics[clustered["topic"]].label
    assert label in block
    word = clustered["title"].split()[0]
    assert "in title" in block and word.replace("'", "&#39;").replace('"', "&#34;") in block


def test_hostile_scraped_text_is_escaped_and_bad_links_dropped(site_web):
    web, _ = site_web
    add_hostile_story(web.db)
    web.add_user("cora", "curator")
    client = web.login("cora")
    client.post(f"{DESK}/draft", data={"csrf_token": token(client)})
    page = client.get(DESK).text
    assert "Boat capsizes off" in page
    assert '<script>alert("pwned")' not in page and "<img src=x" not in page
    assert "javascript:" not in page
    html = client.get(f"{DESK}/email.html").text
    assert "<script" not in html and "javascript:" not in html


def test_preview_is_sandboxed_at_desktop_and_mobile_width(desk):
    _, _, client = desk
    page = client.get(f"{DESK}/preview")
    assert page.status_code == 200
    frames = re.findall(r"<iframe [^>]*>", page.text)
    assert len(frames) == 2 and all('sandbox="' in f and "allow-scripts" not in f for f in frames)
    assert "Desktop (700 px wide)" in page.text and "Mobile (375 px wide)" in page.text
    mail = client.get(f"{DESK}/email.html")
    policy_header = mail.headers["content-security-policy"]
    assert "script-src" not in policy_header and "default-src 'none'" in policy_header
    assert "sandbox" in policy_header
    assert mail.text.lstrip().lower().startswith("<!doctype html")
    text = client.get(f"{DESK}/email.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert issue_of(desk[0])["sections"][0]["entries"][0]["headline"][:30] in text.text


def test_send_a_test_copy(desk):
    web, mail, client = desk
    response = client.post(f"{DESK}/test", data={"csrf_token": token(client),
                                                 "address": "Curator@Example.org"})
    assert response.status_code == 303
    assert "A test copy was sent" in client.get(response.headers["location"]).text
    assert mail.handler.wait_for(1, 20)
    _, rcpts, raw = mail.handler.messages[0]
    assert rcpts == ["curator@example.org"]
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"].startswith("[TEST]")
    html = message.get_body(("html",)).get_content()
    assert issue_of(web)["sections"][0]["entries"][0]["headline"][:30] in html.replace("&#39;", "'")
    assert digest.find_issue(web.db, WEEK)["state"] == "draft"


def test_a_bad_test_address_gets_a_sentence(desk):
    _, mail, client = desk
    response = client.post(f"{DESK}/test", data={"csrf_token": token(client), "address": "nope"})
    assert response.status_code == 400
    assert "not a valid email address" in response.text
    assert mail.handler.count() == 0


def test_approve_before_the_send_time(desk):
    web, _, client = desk
    web.db.execute("UPDATE digests SET send_at = '2099-01-01T09:00:00Z' WHERE week = ?", [WEEK])
    response = client.post(f"{DESK}/approve", data={"csrf_token": token(client)})
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "The issue is approved" in page and "can no longer be edited" in page
    issue = digest.find_issue(web.db, WEEK)
    assert issue["state"] == "approved" and issue["approved_by"] == "cora"
    assert 'id="approve-button"' not in page and "/exclude" not in page


def test_a_late_approval_asks_for_confirmation(desk):
    web, _, client = desk
    web.db.execute("UPDATE digests SET send_at = '2026-01-01T09:00:00Z' WHERE week = ?", [WEEK])
    response = client.post(f"{DESK}/approve", data={"csrf_token": token(client)})
    assert response.status_code == 409
    assert "has passed" in response.text and 'name="confirm_late" value="yes"' in response.text
    assert digest.find_issue(web.db, WEEK)["state"] == "draft"
    response = client.post(f"{DESK}/approve", data={"csrf_token": csrf_from(response.text),
                                                    "confirm_late": "yes"})
    assert response.status_code == 303
    issue = digest.find_issue(web.db, WEEK)
    assert issue["state"] == "approved" and issue["approved_late"] == 1


def test_htmx_requests_get_errors_in_place(desk):
    """htmx swaps only 2xx answers, so a refused edit comes back as the desk with the sentence."""
    web, _, client = desk
    story = section_stories(web, issue_of(web)["sections"][0]["slug"])[0]
    response = client.post(f"{DESK}/story/{story}/move",
                           data={"csrf_token": token(client), "position": "x"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'id="desk-error"' in response.text
    assert "Give the new position as a number" in response.text


def test_history_lists_who_did_what(desk):
    web, _, client = desk
    slug = issue_of(web)["sections"][0]["slug"]
    story = section_stories(web, slug)[0]
    client.post(f"{DESK}/story/{story}/exclude", data={"csrf_token": token(client)})
    client.post(f"{DESK}/intro", data={"csrf_token": token(client), "intro": "Hello"})
    page = client.get(f"{DESK}/history").text
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page)
    newest = [(who, action) for _, who, action in rows][:2]
    assert newest == [("cora", "intro"), ("cora", "exclude")]


def test_add_an_article_from_its_address(desk, site, article_pages):
    web, _, client = desk
    page = article_pages[0]
    site.add("/news/article.html", page["body"], "text/html; charset=utf-8")
    slug = issue_of(web)["sections"][-1]["slug"]
    response = client.post(f"{DESK}/add", data={"csrf_token": token(client),
                                                "url": site.url("/news/article.html"),
                                                "section": slug}, timeout=120)
    assert response.status_code == 303, response.text
    entries = issue_of(web)["sections"][-1]["entries"]
    assert entries[-1]["manual"]
    history = digest.edit_history(web.db, issue_of(web)["id"])
    assert history[-1]["action"] == "add" and history[-1]["by"] == "cora"
    assert history[-1]["value"]["url"] == site.url("/news/article.html")
    shown = client.get(response.headers["location"]).text
    assert "The article was fetched and added" in shown
    assert f'id="story-{entries[-1]["story"]}"' in shown


def test_add_refuses_a_non_http_address(desk):
    _, _, client = desk
    response = client.post(f"{DESK}/add", data={"csrf_token": token(client),
                                                "url": "javascript:alert(1)"})
    assert response.status_code == 400 and "is not an http:// or https:// address" in response.text


def test_a_newly_stored_story_shows_among_the_candidates_at_once(desk):
    """The candidates are cached briefly; a new article in the archive is seen on the next load."""
    web, _, client = desk
    assert "Boat capsizes off" not in client.get(DESK).text
    add_hostile_story(web.db)
    assert "Boat capsizes off" in client.get(DESK).text
