"""The curation desk: the week's draft by section, its candidate stories, preview, test, approve.

Maps HTTP to monitor.digest, monitor.render and monitor.outbox (plus monitor.desk_queries); every
change is one recorded digest edit. Forms work without JavaScript; htmx swaps #desk in place.
"""

from __future__ import annotations

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from monitor import desk_queries, digest, outbox, render
from monitor.digest_select import parse_week, week_of
from monitor.errors import DigestError, MonitorError
from monitor.web.common import current_user, get_config, get_db, require_role, see_other
from monitor.web.common import render as render_page

ROLES = ("curator",)
NAV = [("Desk", "/desk", ROLES)]

# Fixed notices after a successful action (Post/Redirect/Get); never text taken from the request.
NOTICES = {
    "drafted": "The draft was rebuilt from the archive; your edits were kept.",
    "saved": "Saved.",
    "added": "The article was fetched and added to the issue.",
    "test-sent": "A test copy was sent. Check the inbox of the address you gave.",
    "approved": "The issue is approved; it will be sent at its send time.",
    "approved-late": "The issue is approved late; the scheduler sends it at its next run.",
}
# The plain email preview gets its own policy: inline styles (mail HTML needs them), remote images
# as a mail client would show them, and no scripts, forms or navigation of the desk page.
PREVIEW_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
                  "font-src https: data:; base-uri 'none'; form-action 'none'; "
                  "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox")


def _week(request: Request) -> str:
    try:
        return parse_week(request.path_params["week"])
    except DigestError as exc:
        raise HTTPException(404, str(exc)) from None


def _issue(request: Request, week: str) -> dict:
    issue = digest.find_issue(get_db(request), week)
    if issue is None:
        raise HTTPException(404, f"There is no draft for {week} yet; open the desk to draft it.")
    return issue


def _by(request: Request) -> str:
    return current_user(request).username


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _filters(request: Request) -> dict:
    query = request.query_params
    return {k: (query.get(k) or None) for k in ("region", "topic", "language")}


def _desk_context(request: Request, week: str, error: str | None = None) -> dict:
    db, config = get_db(request), get_config(request)
    issue = digest.find_issue(db, week)
    context = {"week": week, "issue": None, "error": error, "filters": _filters(request),
               "labels": desk_queries.labels(config), "sections": config.digest.sections,
               "notice": NOTICES.get(request.query_params.get("msg", "")),
               "this_week": week_of(config), "describe": desk_queries.describe_evidence}
    if issue is None:
        return context
    view = digest.issue_view(db, config, issue["id"])
    everything = desk_queries.week_candidates(db, config, issue["id"])
    filters = context["filters"]
    candidates = (desk_queries.week_candidates(db, config, issue["id"], **filters)
                  if any(filters.values()) else everything)
    context.update({
        "issue": view,
        "candidates": candidates,
        "candidate_total": len(everything),
        "languages": sorted({s["language"] for s in everything if s["language"]}),
        "regions_seen": sorted({r for s in everything for r in s["regions"]}),
        "topics_seen": sorted({t for s in everything for t in s["topics"]}),
        "editable": view["state"] == "draft",
        "section_titles": {s.slug: s.title for s in config.digest.sections},
        "section_options": _section_options(config),
    })
    return context


def _section_options(config) -> dict[str | None, Markup]:
    """The <option>s of the section menus, once per chosen section (there is one menu per story,
    and building them in the template dominated the page's render time)."""
    sections = config.digest.sections
    out: dict[str | None, Markup] = {}
    for chosen in [None, *(s.slug for s in sections)]:
        out[chosen] = Markup("").join(
            Markup('<option value="{}"{}>{}</option>').format(
                s.slug, Markup(" selected") if s.slug == chosen else "", s.title)
            for s in sections)
    return out


def _back(request: Request, week: str, notice: str = "saved") -> str:
    """Where to go after an action: the desk of the week, keeping the candidate filters."""
    params = [f"{k}={v}" for k, v in _filters_from_referer(request).items() if v]
    params.append(f"msg={notice}")
    return f"/desk/{week}?" + "&".join(params)


def _filters_from_referer(request: Request) -> dict:
    from urllib.parse import parse_qs, urlsplit

    referer = request.headers.get("referer") or ""
    parts = urlsplit(referer)
    if not parts.path.startswith("/desk/"):
        return {}
    query = parse_qs(parts.query)
    return {k: query[k][0] for k in ("region", "topic", "language")
            if k in query and query[k][0].replace("-", "").isalnum()}


def _failed(request: Request, week: str, exc: MonitorError) -> Response:
    """The desk again with the sentence on top; htmx only swaps 2xx answers, so it gets a 200."""
    return render_page(request, "desk/desk.html", _desk_context(request, week, str(exc)),
                       status_code=200 if _is_htmx(request) else 400)


# -- pages ----------------------------------------------------------------------------------------

@require_role(*ROLES)
def desk_home(request: Request):
    return see_other(f"/desk/{week_of(get_config(request))}")


@require_role(*ROLES)
def desk_page(request: Request):
    week = _week(request)
    return render_page(request, "desk/desk.html", _desk_context(request, week))


@require_role(*ROLES)
def preview_page(request: Request):
    week = _week(request)
    issue = _issue(request, week)
    db, config = get_db(request), get_config(request)
    try:
        message = render.render_issue(config, db, issue["id"])
    except MonitorError as exc:
        return render_page(request, "desk/preview.html",
                           {"week": week, "issue": issue, "error": str(exc), "message": None,
                            "size": 0, "limit": config.digest.max_html_bytes}, status_code=400)
    return render_page(request, "desk/preview.html", {
        "week": week, "issue": issue, "error": None, "message": message,
        "size": len(message.html.encode("utf-8")), "limit": config.digest.max_html_bytes})


@require_role(*ROLES)
def preview_html(request: Request):
    """The email's HTML exactly as sent (generic unsubscribe links), for the sandboxed iframe."""
    week = _week(request)
    issue = _issue(request, week)
    message = render.render_issue(get_config(request), get_db(request), issue["id"])
    return HTMLResponse(message.html, headers={"content-security-policy": PREVIEW_POLICY,
                                               "cache-control": "no-store"})


@require_role(*ROLES)
def preview_text(request: Request):
    week = _week(request)
    issue = _issue(request, week)
    message = render.render_issue(get_config(request), get_db(request), issue["id"])
    return PlainTextResponse(message.text, headers={"cache-control": "no-store"})


@require_role(*ROLES)
def history_page(request: Request):
    week = _week(request)
    issue = _issue(request, week)
    db, config = get_db(request), get_config(request)
    history = list(reversed(digest.edit_history(db, issue["id"])))
    return render_page(request, "desk/history.html", {
        "week": week, "issue": issue, "history": history,
        "section_titles": {s.slug: s.title for s in config.digest.sections}})


# -- actions (POST only) --------------------------------------------------------------------------

@require_role(*ROLES)
def draft_action(request: Request):
    week = _week(request)
    try:
        digest.draft_issue(get_db(request), get_config(request), week, by=_by(request))
    except MonitorError as exc:
        return _failed(request, week, exc)
    return see_other(_back(request, week, "drafted"))


STORY_ACTIONS = ("include", "exclude", "up", "down", "move", "section", "edit")


@require_role(*ROLES)
async def story_action(request: Request):
    week = _week(request)
    action = request.path_params["action"]
    if action not in STORY_ACTIONS:
        raise HTTPException(404, f"'{action}' is not something the desk can do with a story.")
    story = request.path_params["story"]
    form = await request.form()
    fields = {k: str(form.get(k, "")) for k in ("section", "position", "headline", "summary")}
    return await _in_thread(request, _story_action, week, action, story, fields)


def _story_action(request: Request, week: str, action: str, story: int, fields: dict) -> Response:
    db, config = get_db(request), get_config(request)
    by = _by(request)
    try:
        issue_id = _issue(request, week)["id"]
        section = fields["section"] or None
        if action == "include":
            digest.include_story(db, config, issue_id, story, by, section=section)
        elif action == "exclude":
            digest.exclude_story(db, config, issue_id, story, by)
        elif action in ("up", "down"):
            desk_queries.move_by(db, config, issue_id, story, by, -1 if action == "up" else 1)
        elif action == "move":
            if not fields["position"].isdigit():
                raise DigestError("Give the new position as a number "
                                  "(1 is the top of the section).")
            digest.move_story(db, config, issue_id, story, by, int(fields["position"]), section)
        elif action == "section":
            if not section:
                raise DigestError("Choose the section to move the story to.")
            digest.set_section(db, config, issue_id, story, by, section)
        else:
            _edit_text(db, config, issue_id, story, by, fields)
    except MonitorError as exc:
        return _failed(request, week, exc)
    return see_other(_back(request, week) + f"#story-{story}")


def _edit_text(db, config, issue_id: int, story: int, by: str, fields: dict) -> None:
    """Headline and summary come in one form; only what changed becomes an edit."""
    entry = next((e for s in digest.issue_view(db, config, issue_id)["sections"]
                  for e in s["entries"] if e["story"] == story), None)
    if entry is None:
        raise DigestError(f"Story #{story} is not included in this issue; include it to edit it.")
    headline, summary = fields["headline"].strip(), fields["summary"].replace("\r\n", "\n").strip()
    if not headline or not summary:
        raise DigestError("A story needs a headline and a summary; neither may be left empty.")
    if headline != entry["headline"]:
        digest.set_headline(db, config, issue_id, story, by, headline)
    if summary != entry["summary"]:
        digest.set_summary(db, config, issue_id, story, by, summary)


async def _in_thread(request: Request, func, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, request, *args)


@require_role(*ROLES)
async def intro_action(request: Request):
    week = _week(request)
    form = await request.form()
    text = str(form.get("intro", ""))

    def run(request: Request) -> Response:
        try:
            digest.set_intro(get_db(request), get_config(request), _issue(request, week)["id"],
                             _by(request), text)
        except MonitorError as exc:
            return _failed(request, week, exc)
        return see_other(_back(request, week) + "#intro")

    return await _in_thread(request, run)


@require_role(*ROLES)
async def add_action(request: Request):
    week = _week(request)
    form = await request.form()
    url, section = str(form.get("url", "")).strip(), str(form.get("section", "")) or None

    def run(request: Request) -> Response:
        try:
            digest.add_url(get_db(request), get_config(request), _issue(request, week)["id"], url,
                           _by(request), section=section)
        except MonitorError as exc:
            return _failed(request, week, exc)
        return see_other(_back(request, week, "added"))

    return await _in_thread(request, run)


@require_role(*ROLES)
async def test_action(request: Request):
    week = _week(request)
    form = await request.form()
    address = str(form.get("address", "")).strip()

    def run(request: Request) -> Response:
        try:
            outbox.send_test(get_db(request), get_config(request), _issue(request, week)["id"],
                             address)
        except MonitorError as exc:
            return _failed(request, week, exc)
        return see_other(_back(request, week, "test-sent"))

    return await _in_thread(request, run)


@require_role(*ROLES)
async def approve_action(request: Request):
    """Approve; after the send time the curator first sees a page asking to confirm."""
    week = _week(request)
    form = await request.form()
    confirmed = form.get("confirm_late") == "yes"

    def run(request: Request) -> Response:
        db, config = get_db(request), get_config(request)
        issue = _issue(request, week)
        try:
            if issue["state"] == "draft" and digest.is_late(db, issue["id"]) and not confirmed:
                view = digest.issue_view(db, config, issue["id"])
                return render_page(request, "desk/approve_late.html",
                                   {"week": week, "issue": view},
                                   status_code=200 if _is_htmx(request) else 409)
            approved = digest.approve_issue(db, config, issue["id"], _by(request),
                                            confirm_late=confirmed)
        except MonitorError as exc:
            return _failed(request, week, exc)
        return see_other(_back(request, week,
                               "approved-late" if approved["approved_late"] else "approved"))

    return await _in_thread(request, run)


_W = "{week:str}"
routes = [
    Route("/desk", desk_home, methods=["GET"]),
    Route(f"/desk/{_W}", desk_page, methods=["GET"]),
    Route(f"/desk/{_W}/preview", preview_page, methods=["GET"]),
    Route(f"/desk/{_W}/email.html", preview_html, methods=["GET"]),
    Route(f"/desk/{_W}/email.txt", preview_text, methods=["GET"]),
    Route(f"/desk/{_W}/history", history_page, methods=["GET"]),
    Route(f"/desk/{_W}/draft", draft_action, methods=["POST"]),
    Route(f"/desk/{_W}/intro", intro_action, methods=["POST"]),
    Route(f"/desk/{_W}/add", add_action, methods=["POST"]),
    Route(f"/desk/{_W}/test", test_action, methods=["POST"]),
    Route(f"/desk/{_W}/approve", approve_action, methods=["POST"]),
    Route(f"/desk/{_W}/story/{{story:int}}/{{action:str}}", story_action, methods=["POST"]),
]
