"""Sign in, sign out and the start page; account logic lives in monitor.web.auth."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from monitor.web import auth
from monitor.web.common import (
    SESSION_COOKIE,
    client_ip,
    get_config,
    get_db,
    render,
    safe_next,
    see_other,
)

NAV: list = []


def home(request: Request):
    return render(request, "home.html")


def login_form(request: Request):
    return render(
        request,
        "login.html",
        {"next": safe_next(request.query_params.get("next")), "error": None, "username": ""},
    )


async def login(request: Request):
    form = await request.form()
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    db = get_db(request)
    try:
        user = auth.check_login(db, username, password, client_ip(request))
    except auth.LoginThrottled as exc:
        return render(
            request,
            "login.html",
            {"next": target, "error": str(exc), "username": username},
            status_code=429,
        )
    if user is None:
        return render(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": "The user name or password is not right.",
            },
            status_code=401,
        )
    max_age = get_config(request).web.session_max_age
    token = auth.create_session(
        db, user, max_age, client_ip(request), request.headers.get("user-agent", "")
    )
    response = see_other(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(max_age),
        httponly=True,
        samesite="lax",
        secure=request.app.state.secure_cookies,
        path="/",
    )
    return response


def logout(request: Request):
    auth.end_session(get_db(request), request.cookies.get(SESSION_COOKIE))
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
