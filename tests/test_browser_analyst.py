"""An analyst and an admin in Chromium (Playwright): sign in, search, filter, export, chart, item,
saved search, source health. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.web_archive import insert_items

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium: scripts/setup.sh test installs it (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, web):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(
        base_url=web.base_url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.csp_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: (
            page.csp_errors.append(f"{page.url}: {msg.text} {msg.location}")
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None
        ),
    )
    yield page
    context.close()


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_analyst_searches_filters_exports_and_charts(web, page):
    insert_items(web.db, 400)
    web.add_user("ana", "analyst")
    page.goto("/search")
    assert "/login" in page.url  # an account is needed
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(web.users["ana"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/search")

    page.get_by_label("Words to look for").fill("the")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector("mark")
    heading = page.locator("#results-heading").inner_text()
    total_before = int(heading.split()[0].replace(",", "").replace("More", "0") or 0)
    page.screenshot(path=str(ARTIFACTS / "analyst-search.png"), full_page=False)

    # Ticking a facet re-runs the search in place (htmx) and the address follows.
    page.locator("fieldset.facet", has_text="Region").locator("input[value=lampedusa]").check()
    page.wait_for_url("**region=lampedusa**")
    page.wait_for_selector("#results-heading")
    total_after = int(page.locator("#results-heading").inner_text().split()[0].replace(",", ""))
    assert 0 < total_after < total_before
    assert page.locator("fieldset.facet input[value=lampedusa]").is_checked()
    page.screenshot(path=str(ARTIFACTS / "analyst-search-filtered.png"), full_page=False)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text("utf-8"))))
    assert len(rows) == total_after and all("lampedusa" in r["regions"] for r in rows)

    page.get_by_role("link", name="Chart these results by week").click()
    page.wait_for_selector("svg polyline")
    assert page.locator("figcaption li").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "analyst-chart.png"), full_page=True)

    page.goto("/search?q=Hamburg")
    page.locator("ol.results h3 a").first.click()
    page.wait_for_selector("text=Tags and why")
    assert page.locator("table td ul li").count() >= 1  # evidence lines
    page.screenshot(path=str(ARTIFACTS / "analyst-item.png"), full_page=False)
    assert page.csp_errors == []


def test_analyst_saves_a_search_and_uses_the_keyboard(web, page):
    insert_items(web.db, 100)
    web.add_user("ana", "analyst")
    web.db.execute("UPDATE web_users SET email = 'ana@ngo.example'")
    sign_in(page, "ana", web.users["ana"])
    page.goto("/search?q=Hamburg")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    assert skip.evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Save this search").click()
    page.get_by_label("Name").fill("Hamburg weekly")
    page.get_by_role("button", name="Save search").click()
    page.wait_for_selector("text=Hamburg weekly")
    assert page.get_by_role("link", name="Hamburg").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "analyst-saved.png"), full_page=False)
    page.get_by_role("button", name="Delete saved search Hamburg weekly").click()
    page.wait_for_selector("text=You have no saved searches yet.")
    assert page.csp_errors == []


def test_admin_sees_source_health(web, page):
    from tests.test_web_admin import _add_source

    _add_source(web.db, "steady-feed", [10, 11, 9, 10, 12, 10, 11, 10])
    _add_source(
        web.db,
        "dropping-feed",
        [10, 12, 11, 10, 9, 12, 10, 1],
        error="The feed is HTML, not RSS or Atom.",
        failures=1,
    )
    web.add_user("root", "admin")
    sign_in(page, "root", web.users["root"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Source health").click()
    page.wait_for_selector("text=Volume dropped")
    assert page.locator("tr.has-warning").count() == 1
    page.screenshot(path=str(ARTIFACTS / "admin-sources.png"), full_page=True)
    assert page.csp_errors == []
