"""Public member pages over HTTP: subscribe, confirm, preferences, unsubscribe, archive, feed."""

from __future__ import annotations

import email
import re
import xml.etree.ElementTree as ET
from email import policy


from monitor import desk_queries, digest, subscribers
from tests.fixtures_digest import WEEK
from tests.fixtures_web import csrf_from

ATOM = "{http://www.w3.org/2005/Atom}"


def sign_up(client, address: str, **extra) -> object:
    form = {"csrf_token": csrf_from(client.get("/subscribe").text), "email": address,
            "name": "Amal Haddad", "organisation": "Border Watch", "language": "fr",
            "consent": "yes", "consent_version": desk_queries.CONSENT_VERSION, **extra}
    return client.post("/subscribe", data=form, headers={"user-agent": "Test browser/1.0"})


def mailed_link(mail, n: int, path: str) -> str:
    assert mail.handler.wait_for(n, 20)
    message = email.message_from_bytes(mail.handler.messages[n - 1][2], policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"https?://\S+/{path}/\S+", text).group(0)


def local(web, url: str) -> str:
    assert url.startswith(web.base_url + "/")
    return url[len(web.base_url):]


def test_subscribe_page_has_every_field_and_the_consent_text(site_web):
    web, _ = site_web
    page = web.client().get("/subscribe")
    assert page.status_code == 200
    for name in ("email", "name", "organisation", "language", "regions", "topics", "consent",
                 "consent_version", "csrf_token"):
        assert f'name="{name}"' in page.text
    assert desk_queries.CONSENT_TEXT in page.text and desk_queries.CONSENT_VERSION in page.text
    assert web.config.taxonomy.regions["balkan-route"].label in page.text


def test_subscribing_records_consent_and_mails_a_confirmation_link(site_web):
    web, mail = site_web
    client = web.client()
    response = sign_up(client, "Amal@Example.org", regions=["balkan-route", "channel"],
                       topics="pushbacks")
    assert response.status_code == 303 and response.headers["location"] == "/subscribe/thanks"
    assert subscribers.SUBSCRIBE_ANSWER in client.get("/subscribe/thanks").text
    sub = subscribers.get_subscriber(web.db, "amal@example.org")
    assert sub["status"] == "pending" and sub["regions"] == ["balkan-route", "channel"]
    assert sub["topics"] == ["pushbacks"] and sub["language"] == "fr"
    assert sub["consent_how"] == "web"
    assert sub["consent_text_version"] == desk_queries.CONSENT_VERSION
    assert sub["consent_ip"] == "127.0.0.1" and sub["consent_user_agent"] == "Test browser/1.0"
    link = mailed_link(mail, 1, "confirm")
    assert link.startswith(web.base_url + "/confirm/")


def test_the_answer_is_the_same_for_known_and_unknown_addresses(site_web):
    web, mail = site_web
    client = web.client()
    subscribers.add_subscriber(web.db, web.config, "known@example.org", consent={"how": "test"})
    pages = []
    for address in ("new@example.org", "known@example.org", "new@example.org"):
        response = sign_up(client, address)
        assert response.status_code == 303
        pages.append(client.get(response.headers["location"]).text)
    assert pages[0] == pages[1] == pages[2]
    assert mail.handler.wait_for(1, 20)
    assert [rcpts for _, rcpts, _ in mail.handler.messages] == [["new@example.org"]]


def test_bad_input_gets_a_sentence_and_keeps_the_form(site_web):
    web, mail = site_web
    client = web.client()
    response = sign_up(client, "someone@example.org\nBcc: other@example.org")
    assert response.status_code == 400 and "is not one email address" in response.text
    response = sign_up(client, "ok@example.org", name="Eve <eve@evil.example>")
    assert response.status_code == 400 and "give the name only" in response.text
    assert 'value="ok@example.org"' in response.text
    response = sign_up(client, "ok@example.org", consent="")
    assert response.status_code == 400 and "Tick the box" in response.text
    response = sign_up(client, "ok@example.org", regions=["atlantis"])
    assert response.status_code == 400 and "is not one of the regions" in response.text
    assert subscribers.list_subscribers(web.db) == [] and mail.handler.count() == 0


def test_the_subscribe_form_needs_its_csrf_token(site_web):
    web, _ = site_web
    response = web.client().post("/subscribe", data={"email": "a@example.org", "consent": "yes"})
    assert response.status_code == 403
    assert subscribers.list_subscribers(web.db) == []


def test_confirmation_link_shows_a_button_and_only_the_post_confirms(site_web):
    web, mail = site_web
    client = web.client()
    sign_up(client, "amal@example.org")
    path = local(web, mailed_link(mail, 1, "confirm"))
    scanner = web.client()  # a mail scanner follows the link without cookies
    page = scanner.get(path)
    assert page.status_code == 200 and 'id="confirm-button"' in page.text
    assert 'method="post"' in page.text
    assert subscribers.get_subscriber(web.db, "amal@example.org")["status"] == "pending"
    response = client.post(path, data={"csrf_token": csrf_from(client.get(path).text)})
    assert response.status_code == 200 and "Your subscription is confirmed" in response.text
    assert subscribers.get_subscriber(web.db, "amal@example.org")["status"] == "active"
    assert "/preferences/" in response.text


def test_a_broken_or_wrong_purpose_link_is_refused(site_web):
    web, _ = site_web
    sub = subscribers.add_subscriber(web.db, web.config, "m@example.org", consent={"how": "test"})
    client = web.client()
    page = client.get("/confirm/not-a-token")
    assert page.status_code == 400 and "is not valid" in page.text
    unsubscribe_token = subscribers.unsubscribe_url(web.config, sub).rsplit("/", 1)[1]
    assert client.get(f"/preferences/{unsubscribe_token}").status_code == 400


def test_preference_centre_changes_regions_and_topics(site_web):
    web, _ = site_web
    sub = subscribers.add_subscriber(web.db, web.config, "m@example.org", regions=["channel"],
                                     consent={"how": "test"})
    path = local(web, subscribers.preferences_url(web.config, sub))
    client = web.client()
    page = client.get(path)
    assert page.status_code == 200 and re.search(r'value="channel" [^>]*checked', page.text)
    response = client.post(path, data={"csrf_token": csrf_from(page.text), "name": "M",
                                       "organisation": "", "language": "de",
                                       "regions": ["central-med", "aegean-islands"],
                                       "topics": ["detention"]})
    assert response.status_code == 303
    assert "Your preferences are saved" in client.get(response.headers["location"]).text
    sub = subscribers.get_subscriber(web.db, "m@example.org")
    assert sub["regions"] == ["central-med", "aegean-islands"] and sub["topics"] == ["detention"]
    assert sub["language"] == "de" and sub["name"] == "M"


def test_unsubscribe_page_shows_a_button_and_the_post_unsubscribes(site_web):
    web, _ = site_web
    sub = subscribers.add_subscriber(web.db, web.config, "m@example.org", consent={"how": "test"})
    path = local(web, subscribers.unsubscribe_url(web.config, sub))
    client = web.client()
    page = client.get(path)
    assert page.status_code == 200 and 'id="unsubscribe-button"' in page.text
    assert subscribers.get_subscriber(web.db, "m@example.org")["status"] == "active"
    response = client.post(path, data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    sub = subscribers.get_subscriber(web.db, "m@example.org")
    assert sub["status"] == "unsubscribed" and sub["unsubscribe_how"] == "page"


def test_one_click_unsubscribe_needs_no_cookie_or_token(site_web):
    """RFC 8058: the mail client POSTs List-Unsubscribe=One-Click to the List-Unsubscribe URL."""
    web, _ = site_web
    sub = subscribers.add_subscriber(web.db, web.config, "m@example.org", consent={"how": "test"})
    response = web.client().post(local(web, subscribers.unsubscribe_url(web.config, sub)),
                                 content=b"List-Unsubscribe=One-Click",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    sub = subscribers.get_subscriber(web.db, "m@example.org")
    assert sub["status"] == "unsubscribed" and sub["unsubscribe_how"] == "one-click"


def _sent_issue(web) -> dict:
    issue = digest.draft_issue(web.db, web.config, WEEK)
    web.db.execute("UPDATE digests SET send_at = '2099-01-01T09:00:00Z' WHERE id = ?",
                   [issue["id"]])
    digest.approve_issue(web.db, web.config, issue["id"], "cora")
    digest.set_issue_state(web.db, issue["id"], "sending")
    return digest.set_issue_state(web.db, issue["id"], "sent")


def test_archive_lists_only_sent_issues_with_their_web_version(site_web):
    web, _ = site_web
    client = web.client()
    draft = digest.draft_issue(web.db, web.config, WEEK)
    assert "No issue has been sent yet" in client.get("/archive").text
    assert client.get(f"/digest/{WEEK}").status_code == 404
    _sent_issue(web)
    page = client.get("/archive").text
    assert f'href="/digest/{WEEK}"' in page and "week 49, 2026" in page
    version = client.get(f"/digest/{WEEK}")
    assert version.status_code == 200
    assert "script-src" not in version.headers["content-security-policy"]
    first = digest.issue_view(web.db, web.config, draft["id"])["sections"][0]["entries"][0]
    assert first["headline"][:30].replace("'", "&#39;").replace('"', "&#34;") in version.text
    assert "<script" not in version.text
    assert client.get("/digest/not-a-week").status_code == 404


def test_atom_feed_of_the_archive(site_web):
    web, _ = site_web
    issue = _sent_issue(web)
    response = web.client().get("/archive.atom")
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    link = entries[0].find(f"{ATOM}link").get("href")
    assert link == f"{web.base_url}/digest/{WEEK}"
    assert entries[0].find(f"{ATOM}updated").text == issue["sent_at"]
    assert "stories" in entries[0].find(f"{ATOM}summary").text
