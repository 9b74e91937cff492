"""A curator in Chromium (Playwright): signs in, drafts the week, excludes, reorders by keyboard and
by drag and drop, edits a headline, filters candidates, previews, sends a test, approves late after
confirming, reads the history. Screenshots go to test-artifacts/."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from monitor import digest
from tests.fixtures_digest import WEEK
from tests.helpers import ROOT

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
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
    context = browser.new_context(base_url=web.base_url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.csp_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.csp_errors.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
    yield page
    context.close()


def stories_in(web, slug: str) -> list[int]:
    issue = digest.find_issue(web.db, WEEK)
    view = digest.issue_view(web.db, web.config, issue["id"])
    return [e["story"] for s in view["sections"] if s["slug"] == slug for e in s["entries"]]


def shown_in(page, slug: str) -> list[int]:
    return [int(x) for x in page.locator(f'ol[data-section="{slug}"] > li.entry')
            .evaluate_all("els => els.map(e => e.dataset.story)")]


def first_entry(page, slug: str):
    return page.locator(f'ol[data-section="{slug}"] > li.entry').first


def test_curator_curates_previews_tests_and_approves(site_web, page):
    web, mail = site_web
    web.add_user("cora", "curator")
    page.goto(f"/desk/{WEEK}")
    assert "/login" in page.url
    page.get_by_label("User name").fill("cora")
    page.get_by_label("Password").fill(web.users["cora"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/desk/{WEEK}")

    page.get_by_role("button", name=f"Draft the issue for {WEEK}").click()
    page.wait_for_selector("ol.entries li.entry")
    slug = web.config.digest.sections[0].slug
    order = stories_in(web, slug)
    assert shown_in(page, slug) == order and len(order) >= 4
    page.screenshot(path=str(ARTIFACTS / "curator-desk.png"))

    # Exclude the last story of the first section (htmx swaps the desk in place).
    page.locator(f"#exclude-{order[-1]}").click()
    expect(page.locator(f'ol[data-section="{slug}"] #story-{order[-1]}')).to_have_count(0)
    assert stories_in(web, slug) == order[:-1]
    assert page.locator(f"#include-{order[-1]}").is_visible()  # back among the candidates
    order = order[:-1]

    # Keyboard: focus the first story's Down button and press Enter; focus stays on it.
    page.locator(f"#down-{order[0]}").focus()
    page.keyboard.press("Enter")
    expect(first_entry(page, slug)).to_have_attribute("data-story", str(order[1]))
    assert stories_in(web, slug)[:2] == [order[1], order[0]]
    focused = page.evaluate("document.activeElement && document.activeElement.id")
    assert focused == f"down-{order[0]}"
    order = stories_in(web, slug)

    # Drag and drop: the second story onto the top half of the first (both in view, as a person
    # would drag; Chromium picks the drag source after any scrolling).
    page.locator(f"#story-{order[0]}").evaluate("el => el.scrollIntoView({block: 'start'})")
    second, first = page.locator(f"#story-{order[1]}"), page.locator(f"#story-{order[0]}")
    second.drag_to(first, source_position={"x": 20, "y": 10}, target_position={"x": 40, "y": 5})
    expect(first_entry(page, slug)).to_have_attribute("data-story", str(order[1]))
    assert stories_in(web, slug)[:3] == [order[1], order[0], order[2]]
    order = stories_in(web, slug)

    # Edit the top story's headline.
    top = page.locator(f"#story-{order[0]}")
    top.get_by_text("Edit headline and summary").click()
    top.get_by_label("Headline").fill("Rescue ship held in port for a week")
    top.get_by_role("button", name="Save").click()
    page.wait_for_selector(f"#story-{order[0]} h4:has-text('Rescue ship held in port for a week')")

    # Filter the candidates by region.
    before = page.locator("#candidate-count").inner_text()
    page.get_by_label("Region").select_option("balkan-route")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**region=balkan-route**")
    after = page.locator("#candidate-count").inner_text()
    assert int(after.split()[0]) < int(before.split()[0])
    page.locator(".candidate details.evidence summary").first.click()
    page.screenshot(path=str(ARTIFACTS / "curator-desk-filtered.png"))

    # Preview: the email as sent, in sandboxed frames at two widths.
    page.get_by_role("link", name="Preview the email").click()
    page.wait_for_url("**/preview")
    frame = page.frame_locator(".preview-desktop iframe")
    frame.get_by_role("link", name="Rescue ship held in port for a week").wait_for()
    page.frame_locator(".preview-mobile iframe").get_by_role(
        "link", name="Rescue ship held in port for a week").wait_for()
    page.screenshot(path=str(ARTIFACTS / "curator-preview.png"))
    page.get_by_role("link", name="Back to the desk").click()

    # A test copy to the loopback SMTP server.
    page.get_by_label("Email address").fill("cora@example.org")
    page.get_by_role("button", name="Send a test copy").click()
    page.wait_for_selector("text=A test copy was sent")
    assert mail.handler.wait_for(1, 20)
    message = email.message_from_bytes(mail.handler.messages[0][2], policy=policy.default)
    assert message["Subject"].startswith("[TEST]")
    assert "Rescue ship held in port for a week" in message.get_body(("plain",)).get_content()

    # The send time has passed: approving asks to confirm first.
    web.db.execute("UPDATE digests SET send_at = '2026-01-01T09:00:00Z' WHERE week = ?", [WEEK])
    page.reload()
    page.get_by_role("button", name="Approve the issue").click()
    page.wait_for_selector("text=has passed")
    assert digest.find_issue(web.db, WEEK)["state"] == "draft"
    page.screenshot(path=str(ARTIFACTS / "curator-approve-late.png"))
    page.get_by_role("button", name="Yes, approve and send it now").click()
    page.wait_for_selector("text=approved late")
    issue = digest.find_issue(web.db, WEEK)
    assert issue["state"] == "approved" and issue["approved_by"] == "cora"
    assert page.locator("#approve-button").count() == 0

    page.get_by_role("link", name="History of edits").click()
    page.wait_for_url("**/history")
    actions = page.locator("table.history tbody tr td:nth-child(3)").all_inner_texts()
    assert actions[0] == "approve" and {"exclude", "move", "headline"} <= set(actions)
    page.screenshot(path=str(ARTIFACTS / "curator-history.png"), full_page=True)
    assert page.csp_errors == []


def test_desk_works_without_javascript(browser, site_web):
    """The same buttons are plain forms: with JavaScript off, Up still moves a story."""
    web, _ = site_web
    web.add_user("cora", "curator")
    context = browser.new_context(base_url=web.base_url, java_script_enabled=False,
                                  viewport={"width": 390, "height": 900})
    page = context.new_page()
    page.goto("/login?next=/desk/" + WEEK)
    page.get_by_label("User name").fill("cora")
    page.get_by_label("Password").fill(web.users["cora"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=f"Draft the issue for {WEEK}").click()
    slug = web.config.digest.sections[0].slug
    order = stories_in(web, slug)
    page.locator(f"#up-{order[1]}").click()
    page.wait_for_load_state()
    assert stories_in(web, slug)[:2] == [order[1], order[0]]
    assert shown_in(page, slug)[:2] == [order[1], order[0]]
    page.screenshot(path=str(ARTIFACTS / "curator-desk-mobile-nojs.png"))
    context.close()


def test_curator_corrects_a_story_region_and_the_draft_follows(site_web, page):
    """On an item's page a curator moves a Mediterranean story to the Channel; the week's draft
    then files it under The Channel, and a retag would keep it there."""
    web, _ = site_web
    web.add_user("cora", "curator")
    story = next(s for s in web.db.stories if s["region"] == "central-med")
    page.goto(f"/login?next=/items/{story['story']}")
    page.get_by_label("User name").fill("cora")
    page.get_by_label("Password").fill(web.users["cora"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/items/{story['story']}")
    page.get_by_text("Correct the tags").click()
    regions = page.get_by_role("group", name="Regions")
    expect(regions.get_by_label("Central Mediterranean")).to_be_checked()
    regions.get_by_label("Central Mediterranean").uncheck()
    regions.get_by_label("The Channel").check()
    page.get_by_label("Note (optional)").fill("Calais, not Lampedusa")
    page.get_by_role("button", name="Save the review").click()
    page.wait_for_url(f"**/items/{story['story']}#tags")
    expect(page.locator(".review-status")).to_contain_text("Reviewed by cora")
    expect(page.locator("table")).to_contain_text("The Channel")
    page.screenshot(path=str(ARTIFACTS / "curator-item-review.png"))
    assert not page.csp_errors, page.csp_errors

    page.goto(f"/desk/{WEEK}")
    page.get_by_role("button", name=f"Draft the issue for {WEEK}").click()
    page.wait_for_selector("ol.entries li.entry")
    assert story["story"] in stories_in(web, "channel")
    assert story["story"] not in stories_in(web, "mediterranean")
