"""Helpers every routes_*.py module uses: the request's database, config and user, rendering, roles.

No queries of its own beyond the session lookup (that lives in monitor.web.auth).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from monitor.web import auth

SESSION_COOKIE = "bnm_session"
CSRF_COOKIE = "bnm_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def get_db(request: Request):
    """A connection for the current thread (SQLite connections are per thread here)."""
    return request.app.state.db()


def get_index(request: Request):
    """The process's in-memory facet index of the archive (monitor.archive_index), or None."""
    return request.app.state.index_holder.get(get_db(request))


def get_config(request: Request):
    return request.app.state.config


def current_user(request: Request) -> auth.User | None:
    if not hasattr(request.state, "user"):
        token = request.cookies.get(SESSION_COOKIE)
        request.state.user = auth.session_user(get_db(request), token) if token else None
    return request.state.user


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def csrf_token_for(secret: str, cookie_value: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + cookie_value.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token to put in every form as <input type=hidden name=csrf_token> (see base.html macro)."""
    return csrf_token_for(request.app.state.secret, request.scope["state"]["csrf_cookie"])


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a Jinja2 template with user, csrf_token, nav and config in its context."""
    ctx = {
        "user": current_user(request),
        "csrf_token": csrf_token(request),
        "nav": visible_nav(request),
        "current_path": request.scope["path"],
        "config": get_config(request),
    }
    ctx.update(context or {})
    return request.app.state.templates.TemplateResponse(
        request, template, ctx, status_code=status_code, headers=headers
    )


def visible_nav(request: Request) -> list[tuple[str, str]]:
    user = current_user(request)
    out = []
    for label, path, roles in request.app.state.nav:
        if roles is None or (user is not None and (not roles or user.has_role(*roles))):
            out.append((label, path))
    return out


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def require_role(*roles: str) -> Callable:
    """Decorator for endpoints: a signed-in user with one of `roles` (admins always pass).

    require_role() with no roles admits any signed-in user. Anonymous browsers are redirected to
    the sign-in page (API clients get 401 JSON); signed-in users without the role get 403.
    """

    def decorate(endpoint: Callable) -> Callable:
        def check(request: Request) -> Response | None:
            user = current_user(request)
            if user is None:
                if _is_api(request):
                    return JSONResponse({"error": "Sign in first."}, status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if roles and not user.has_role(*roles):
                if _is_api(request):
                    return JSONResponse(
                        {"error": "Your account may not use this."}, status_code=403
                    )
                raise HTTPException(403, "Your account does not have access to this page.")
            return None

        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def async_wrapper(request: Request):
                return check(request) or await endpoint(request)

            async_wrapper.required_roles = roles  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(endpoint)
        def wrapper(request: Request):
            return check(request) or endpoint(request)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def see_other(url: str) -> RedirectResponse:
    """The answer to a successful POST (Post/Redirect/Get)."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths are followed after sign-in (no open redirects)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default
