"""A member in Chromium (Playwright): subscribes, receives the confirmation mail at a loopback
aiosmtpd server, opens the link, confirms with the button, changes preferences, receives an issue,
and unsubscribes through the link in its List-Unsubscribe header; then reads the public archive.
Mails are parsed with the email package. Screenshots go to test-artifacts/."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest

from monitor import digest, outbox, subscribers
from tests.fixtures_digest import WEEK
from tests.helpers import ROOT

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium: scripts/setup.sh test installs it (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site_web):
    web, _ = site_web
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(base_url=web.base_url, viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.csp_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.csp_errors.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
    yield page
    context.close()


def received(mail, n: int):
    assert mail.handler.wait_for(n, 30), f"mail {n} did not arrive"
    return email.message_from_bytes(mail.handler.messages[n - 1][2], policy=policy.default)


def test_member_subscribes_confirms_and_unsubscribes(site_web, page):
    web, mail = site_web
    page.goto("/")
    page.get_by_role("link", name="Subscribe").first.click()
    page.wait_for_url("**/subscribe")
    page.get_by_label("Email address").fill("Amal.Haddad@Example.org")
    page.get_by_label("Your name").fill("Amal Haddad")
    page.get_by_label("Organisation").fill("Border Watch")
    page.get_by_label("Language you prefer to read").select_option("fr")
    page.get_by_label(web.config.taxonomy.regions["balkan-route"].label, exact=True).check()
    page.get_by_label(web.config.taxonomy.topics["pushbacks"].label, exact=True).check()
    page.get_by_label("I agree").check()
    page.screenshot(path=str(ARTIFACTS / "member-subscribe.png"), full_page=True)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/subscribe/thanks")
    assert subscribers.SUBSCRIBE_ANSWER in page.locator("main").inner_text()

    confirmation = received(mail, 1)
    assert mail.handler.messages[0][1] == ["amal.haddad@example.org"]
    text = confirmation.get_body(("plain",)).get_content()
    link = re.search(r"http://\S+/confirm/\S+", text).group(0)
    page.goto(link)
    assert subscribers.get_subscriber(web.db, "amal.haddad@example.org")["status"] == "pending"
    page.screenshot(path=str(ARTIFACTS / "member-confirm.png"))
    page.get_by_role("button", name="Confirm my subscription").click()
    page.wait_for_selector("text=Your subscription is confirmed")
    assert subscribers.get_subscriber(web.db, "amal.haddad@example.org")["status"] == "active"

    page.get_by_role("link", name="Choose what you receive").click()
    page.wait_for_url("**/preferences/**")
    balkan = web.config.taxonomy.regions["balkan-route"].label
    assert page.get_by_label(balkan, exact=True).is_checked()
    page.get_by_label(web.config.taxonomy.topics["detention"].label, exact=True).check()
    page.get_by_role("button", name="Save my preferences").click()
    page.wait_for_selector("text=Your preferences are saved")
    page.screenshot(path=str(ARTIFACTS / "member-preferences.png"), full_page=True)
    assert subscribers.get_subscriber(web.db, "amal.haddad@example.org")["topics"] == [
        "pushbacks", "detention"]

    # An issue arrives; its List-Unsubscribe header carries the signed link (RFC 8058).
    issue = digest.draft_issue(web.db, web.config, WEEK)
    web.db.execute("UPDATE digests SET send_at = '2099-01-01T09:00:00Z' WHERE id = ?",
                   [issue["id"]])
    digest.approve_issue(web.db, web.config, issue["id"], "cora")
    outbox.send_issue(web.db, web.config, issue["id"])
    weekly = received(mail, 2)
    assert weekly["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.search(r"<(https?://[^>]+)>", weekly["List-Unsubscribe"]).group(1)
    assert unsubscribe.startswith(f"{web.base_url}/unsubscribe/")
    page.goto(unsubscribe)
    page.screenshot(path=str(ARTIFACTS / "member-unsubscribe.png"))
    assert subscribers.get_subscriber(web.db, "amal.haddad@example.org")["status"] == "active"
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You are unsubscribed")
    assert subscribers.get_subscriber(web.db, "amal.haddad@example.org")["status"] == "unsubscribed"

    # The sent issue is now in the public archive, with its web version and feed.
    page.get_by_role("link", name="Read past issues").click()
    page.wait_for_url("**/archive")
    page.screenshot(path=str(ARTIFACTS / "member-archive.png"))
    page.get_by_role("link", name=re.compile("week 49, 2026")).click()
    page.wait_for_url(f"**/digest/{WEEK}")
    assert page.locator("h2").count() >= 3
    page.screenshot(path=str(ARTIFACTS / "member-issue-web.png"))
    assert page.csp_errors == []
