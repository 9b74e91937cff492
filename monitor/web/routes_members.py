"""Public member pages (no account): subscribe, confirm, preferences, unsubscribe, the archive.

Maps HTTP to monitor.subscribers and monitor.render. Signed links (built on [web] base_url by
monitor.subscribers) only ever show a page on GET; the change happens on the page's POST button,
because mail scanners follow every link. POST /unsubscribe/<token> is also the RFC 8058 one-click
endpoint: it needs no cookie and no CSRF token, the signed token is the authority.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from monitor import desk_queries, digest, render, subscribers
from monitor.digest_select import parse_week
from monitor.errors import DigestError, MonitorError, SubscriberError
from monitor.web.common import client_ip, get_config, get_db, see_other
from monitor.web.common import render as render_page

NAV = [("Subscribe", "/subscribe", None), ("Archive", "/archive", None)]
# Entries ending in "/" are meant as path prefixes (the token follows); see the report of issue 5.
CSRF_EXEMPT = {"/unsubscribe/"}
LANGUAGES = (("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("it", "Italiano"),
             ("es", "Español"), ("nl", "Nederlands"), ("pl", "Polski"), ("el", "Ελληνικά"),
             ("pt", "Português"))
# The web version of an issue is a complete document with its own inline styles and no scripts.
ISSUE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


def _choices(config) -> dict:
    """Regions (parents before their children) and topics for the checkboxes."""
    regions = config.taxonomy.regions
    ordered: list[tuple[str, str, int]] = []

    def add(parent: str | None, depth: int) -> None:
        for slug, cat in regions.items():
            if getattr(cat, "within", None) == parent:
                ordered.append((slug, cat.label, depth))
                add(slug, depth + 1)

    add(None, 0)
    seen = {slug for slug, _, _ in ordered}
    ordered += [(slug, c.label, 0) for slug, c in regions.items() if slug not in seen]
    topics = [(slug, c.label) for slug, c in config.taxonomy.topics.items()]
    return {"regions": ordered, "topics": topics, "languages": LANGUAGES}


def _form_values(form) -> dict:
    return {"email": str(form.get("email", "")).strip(), "name": str(form.get("name", "")),
            "organisation": str(form.get("organisation", "")),
            "language": str(form.get("language", "en")),
            "regions": [str(v) for v in form.getlist("regions")],
            "topics": [str(v) for v in form.getlist("topics")]}


def _subscribe_page(request: Request, values: dict, error: str | None, status: int = 200):
    return render_page(request, "members/subscribe.html", {
        "values": values, "error": error, "consent_text": desk_queries.CONSENT_TEXT,
        "consent_version": desk_queries.CONSENT_VERSION, **_choices(get_config(request))},
        status_code=status)


def subscribe_form(request: Request):
    empty = {"email": "", "name": "", "organisation": "", "language": "en", "regions": [],
             "topics": []}
    return _subscribe_page(request, empty, None)


async def subscribe_post(request: Request):
    form = await request.form()
    values = _form_values(form)
    agreed = form.get("consent") == "yes"
    version = str(form.get("consent_version", ""))
    consent = {"how": "web", "text_version": version, "ip": client_ip(request),
               "user_agent": request.headers.get("user-agent", "")}

    def run(request: Request) -> Response:
        if not agreed:
            return _subscribe_page(request, values, "Tick the box to agree to receive the digest; "
                                   "we cannot send it without your consent.", 400)
        if version != desk_queries.CONSENT_VERSION:
            return _subscribe_page(request, values, "The consent text changed while you were on "
                                   "this page; read it again and send the form once more.", 400)
        try:
            subscribers.subscribe(get_db(request), get_config(request), values["email"],
                                  values["name"], values["organisation"], values["language"],
                                  values["regions"], values["topics"], consent)
        except SubscriberError as exc:
            return _subscribe_page(request, values, str(exc), 400)
        except MonitorError:
            return _subscribe_page(request, values, "We could not send the confirmation mail just "
                                   "now. Please try again in a few minutes.", 503)
        return see_other("/subscribe/thanks")

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(run, request)


def subscribe_thanks(request: Request):
    return render_page(request, "members/message.html", {
        "title": "Check your inbox", "message": subscribers.SUBSCRIBE_ANSWER, "links": []})


def _from_token(request: Request, purpose: str) -> dict:
    try:
        return subscribers.subscriber_from_token(get_db(request), get_config(request),
                                                 request.path_params["token"], purpose)
    except SubscriberError as exc:
        raise HTTPException(400, str(exc)) from None


def confirm_page(request: Request):
    sub = _from_token(request, "confirm")
    return render_page(request, "members/confirm.html", {"sub": sub,
                                                         "token": request.path_params["token"]})


def confirm_post(request: Request):
    db, config = get_db(request), get_config(request)
    try:
        sub = subscribers.confirm(db, config, request.path_params["token"])
    except SubscriberError as exc:
        raise HTTPException(400, str(exc)) from None
    return render_page(request, "members/message.html", {
        "title": "Your subscription is confirmed",
        "message": f"Thank you. {config.digest.title} will arrive at {sub['email']} every week.",
        "links": [("Choose what you receive", subscribers.preferences_url(config, sub)),
                  ("Read past issues", "/archive")]})


def preferences_page(request: Request):
    sub = _from_token(request, "preferences")
    return _preferences(request, sub, None, request.query_params.get("saved") == "1")


def _preferences(request: Request, sub: dict, error: str | None, saved: bool, status: int = 200):
    config = get_config(request)
    return render_page(request, "members/preferences.html", {
        "sub": sub, "token": request.path_params["token"], "error": error, "saved": saved,
        "unsubscribe_url": subscribers.unsubscribe_url(config, sub), **_choices(config)},
        status_code=status)


async def preferences_post(request: Request):
    form = await request.form()
    values = _form_values(form)

    def run(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            subscribers.update_preferences(get_db(request), get_config(request), token,
                                           name=values["name"], organisation=values["organisation"],
                                           language=values["language"], regions=values["regions"],
                                           topics=values["topics"])
        except SubscriberError as exc:
            sub = _from_token(request, "preferences")
            sub.update({k: values[k] for k in ("name", "organisation", "language", "regions",
                                               "topics")})
            return _preferences(request, sub, str(exc), False, 400)
        return see_other(f"/preferences/{token}?saved=1")

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(run, request)


def unsubscribe_page(request: Request):
    sub = _from_token(request, "unsubscribe")
    return render_page(request, "members/unsubscribe.html", {
        "sub": sub, "token": request.path_params["token"]})


async def unsubscribe_post(request: Request):
    """The page's button and the RFC 8058 one-click POST (List-Unsubscribe=One-Click)."""
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"

    def run(request: Request) -> Response:
        db, config = get_db(request), get_config(request)
        try:
            sub = subscribers.unsubscribe(db, config, request.path_params["token"],
                                          how="one-click" if one_click else "page")
        except SubscriberError as exc:
            if one_click:
                return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")
            raise HTTPException(400, str(exc)) from None
        if one_click:
            return Response("You are unsubscribed.", media_type="text/plain; charset=utf-8")
        stopped = sub["status"] == "unsubscribed"
        return render_page(request, "members/message.html", {
            "title": "You are unsubscribed" if stopped else "No more mail to this address",
            "message": (f"{sub['email']} will receive no more issues of {config.digest.title}."
                        if stopped else f"{sub['email']} is not receiving the digest "
                        f"(status: {sub['status']})."),
            "links": [("Subscribe again", "/subscribe"), ("Read past issues", "/archive")]})

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(run, request)


# -- the public archive ---------------------------------------------------------------------------

def archive_page(request: Request):
    issues = desk_queries.archive_issues(get_db(request))
    return render_page(request, "members/archive.html", {"issues": issues})


def issue_page(request: Request):
    """The web version of a sent issue (the link `render.web_url` puts in every mail)."""
    try:
        week = parse_week(request.path_params["week"])
    except DigestError as exc:
        raise HTTPException(404, str(exc)) from None
    db, config = get_db(request), get_config(request)
    issue = desk_queries.archived_issue(db, week)
    if issue is None:
        raise HTTPException(404, f"There is no published issue for {week}.")
    return HTMLResponse(render.render_web(config, db, issue["id"]),
                        headers={"content-security-policy": ISSUE_POLICY})


def archive_feed(request: Request):
    """An Atom feed of the sent issues, newest first."""
    db, config = get_db(request), get_config(request)
    entries = []
    for issue in desk_queries.archive_issues(db, limit=50):
        view = digest.issue_view(db, config, issue["id"])
        headlines = [e["headline"] for s in view["sections"] for e in s["entries"]]
        entries.append({"issue": issue, "url": render.web_url(config, issue["week"]),
                        "updated": issue["sent_at"] or issue["updated_at"],
                        "headlines": headlines[:12], "count": len(headlines)})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = request.app.state.templates.get_template("members/archive.atom").render({
        "config": config, "entries": entries, "base": config.digest.base_url,
        "updated": entries[0]["updated"] if entries else now})
    return Response(body, media_type="application/atom+xml; charset=utf-8")


_T = "{token:str}"
routes = [
    Route("/subscribe", subscribe_form, methods=["GET"]),
    Route("/subscribe", subscribe_post, methods=["POST"]),
    Route("/subscribe/thanks", subscribe_thanks, methods=["GET"]),
    Route(f"/confirm/{_T}", confirm_page, methods=["GET"]),
    Route(f"/confirm/{_T}", confirm_post, methods=["POST"]),
    Route(f"/preferences/{_T}", preferences_page, methods=["GET"]),
    Route(f"/preferences/{_T}", preferences_post, methods=["POST"]),
    Route(f"/unsubscribe/{_T}", unsubscribe_page, methods=["GET"]),
    Route(f"/unsubscribe/{_T}", unsubscribe_post, methods=["POST"]),
    Route("/archive", archive_page, methods=["GET"]),
    Route("/archive.atom", archive_feed, methods=["GET"]),
    Route("/digest/{week:str}", issue_page, methods=["GET"]),
]
