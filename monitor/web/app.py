"""The web desk's app factory: Starlette + Jinja2, sessions, CSRF, roles, security headers.

Conventions for every `monitor/web/routes_<area>.py` module (listed once in ROUTE_MODULES below):

- It exposes `routes: list[starlette.routing.BaseRoute]`, optionally `NAV = [(label, path, roles)]`
  (roles: None = everyone, () = any signed-in user, ("curator",) = curators and admins) and
  `CSRF_EXEMPT = {"/path"}` for the rare POST that must work without cookies (RFC 8058 unsubscribe).
- Endpoints are plain functions `def page(request)` (run in a thread; use `get_db(request)`, a
  per-thread connection) or `async def`. Decorate with `@require_role("curator")` etc. from
  monitor.web.common; public pages need no decorator.
- Render with `render(request, "area/page.html", {...})`; templates extend "base.html" and put
  `{{ csrf_field() }}` in every <form method="post">. htmx requests send the token in the
  X-CSRF-Token header automatically (base.html sets hx-headers). Every POST/PUT/PATCH/DELETE is
  checked by the CSRF middleware here; a GET must never change state.
- Jinja2 autoescapes everything; render links only through the `safe_url` filter (http/https).
- The Content-Security-Policy forbids inline scripts and styles: put JS in static/*.js and CSS in
  static/app.css. A response that needs another policy (the email preview in an iframe) sets its own
  Content-Security-Policy header; the middleware leaves it alone.
- Errors: raise starlette.exceptions.HTTPException(status, "sentence") or a MonitorError (shown as
  400 with its sentence).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from monitor.archive_index import IndexHolder
from monitor.archive_queries import SourceVolumes
from monitor.errors import MonitorError
from monitor.store import open_db
from monitor.urls import safe_url
from monitor.web import auth
from monitor.web.cache import ArchiveMemo
from monitor.web.common import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, csrf_token_for

HERE = Path(__file__).resolve().parent
ROUTE_MODULES = [
    "monitor.web.routes_auth",
    "monitor.web.routes_search",
    "monitor.web.routes_admin",
    "monitor.web.routes_api",
    # second web engineer: the curation desk and the member pages
    "monitor.web.routes_desk",
    "monitor.web.routes_members",
]
MAX_FORM_BYTES = 2_000_000
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cross-origin-opener-policy": "same-origin",
}


def create_app(config, db_path: str | os.PathLike | None = None) -> Starlette:
    """The ASGI app for `monitor serve`; db_path overrides config.storage.database."""
    path = Path(db_path) if db_path else config.storage.database
    setup_db = open_db(path)  # runs migrations once, before any request
    secret = os.environ.get(config.web.secret_env) or auth.app_secret(setup_db)
    setup_db.close()

    local = threading.local()
    connections: list = []
    lock = threading.Lock()

    def db():
        conn = getattr(local, "db", None)
        if conn is None:
            conn = open_db(path, migrate=False)
            local.db = conn
            with lock:
                connections.append(conn)
        return conn

    routes: list = []
    nav: list[tuple[str, str, Any]] = []
    exempt: set[str] = set()
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        routes.extend(module.routes)
        nav.extend(getattr(module, "NAV", []))
        exempt.update(getattr(module, "CSRF_EXEMPT", ()))
    routes.append(Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.index_holder.start()
        yield
        with lock:
            for conn in connections:
                conn.close()
            connections.clear()

    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            MonitorError: _monitor_error,
            404: _http_error,
            500: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.db_path = path
    app.state.db = db
    app.state.index_holder = IndexHolder(lambda: open_db(path, migrate=False))
    app.state.memo = ArchiveMemo()  # answers kept until the archive changes (monitor.web.cache)
    app.state.source_volumes = SourceVolumes()
    app.state.secret = secret
    app.state.nav = nav
    app.state.templates = make_templates()
    app.state.secure_cookies = config.web.base_url.startswith("https://")
    app.add_middleware(
        CsrfMiddleware, secret=secret, exempt=frozenset(exempt), secure=app.state.secure_cookies
    )
    app.add_middleware(SecurityHeadersMiddleware)
    return app


class _Environment(jinja2.Environment):
    """Looks `row.title` up as row["title"] first on plain dicts (database rows).

    Jinja tries getattr first; on a dict that raises AttributeError for every column, which cost
    more than the rest of rendering a result list. The answer is the same: a plain dict has no
    attributes beyond the methods of dict, which still win.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_DICT_ATTRIBUTES = frozenset(dir(dict))


def make_templates() -> Jinja2Templates:
    env = _Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates change only with a deploy, which restarts the server
    )
    env.filters["safe_url"] = safe_url
    env.globals["csrf_field"] = _csrf_field
    return Jinja2Templates(env=env)


@jinja2.pass_context
def _csrf_field(ctx) -> Markup:
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(ctx["csrf_token"])}">')


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    from monitor.web.common import render

    try:
        return render(
            request, "error.html", {"status": status, "message": message}, status_code=status
        )
    except Exception:  # the error page itself must never fail
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None)
    default = {404: "This page does not exist.", 405: "This action is not allowed here."}
    message = (
        detail
        if isinstance(detail, str) and detail and detail != _reason(status)
        else default.get(status, _reason(status))
    )
    return _error_page(request, status, message)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _monitor_error(request: Request, exc: Exception) -> Response:
    return _error_page(request, 400, str(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error_page(request, 500, "Something went wrong on our side. The error was logged.")


def _cookies(scope) -> dict[str, str]:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            return cookie_parser(value.decode("latin-1"))
    return {}


class SecurityHeadersMiddleware:
    """Adds CSP and friends to every response that does not set its own."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    if key not in headers:
                        headers[key] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfMiddleware:
    """Double-submit CSRF check on every unsafe request, for signed-in and anonymous visitors.

    Each browser gets a random, HttpOnly, SameSite=Strict cookie; the token in forms (and in the
    X-CSRF-Token header sent by htmx) is an HMAC of it under the app secret. The request body is
    read here (bounded) and replayed to the endpoint.
    """

    def __init__(self, app, secret: str, exempt: frozenset[str], secure: bool):
        self.app = app
        self.secret = secret
        self.exempt = exempt
        self.secure = secure

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cookie = _cookies(scope).get(CSRF_COOKIE)
        new_cookie = None
        if not cookie or len(cookie) > 100:
            cookie = new_cookie = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf_cookie"] = cookie

        async def send_with_cookie(message):
            if message["type"] == "http.response.start" and new_cookie:
                headers = MutableHeaders(scope=message)
                flags = "; Secure" if self.secure else ""
                headers.append(
                    "set-cookie",
                    f"{CSRF_COOKIE}={new_cookie}; Path=/; HttpOnly; SameSite=Strict{flags}",
                )
            await send(message)

        path = scope["path"]
        # An exempt entry ending in "/" covers every path below it (token-bearing URLs such as
        # the RFC 8058 one-click unsubscribe, which mail clients POST without cookies).
        if scope["method"] not in UNSAFE_METHODS or any(
                path == p or (p.endswith("/") and path.startswith(p)) for p in self.exempt):
            return await self.app(scope, receive, send_with_cookie)

        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                return await _plain(send_with_cookie, 413, "The form is too large.")

        expected = csrf_token_for(self.secret, cookie)
        given = _header(scope, CSRF_HEADER) or await _form_token(scope, body)
        if new_cookie or not given or not secrets.compare_digest(given, expected):
            return await _plain(
                send_with_cookie,
                403,
                "This form has expired or did not come from this site. "
                "Go back, reload the page and try again.",
            )

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_cookie)


def _header(scope, name: str) -> str | None:
    raw = name.encode()
    for key, value in scope.get("headers", ()):
        if key == raw:
            return value.decode("latin-1")
    return None


async def _form_token(scope, body: bytes) -> str | None:
    content_type = (_header(scope, "content-type") or "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if key == CSRF_FIELD:
                return value
        return None
    if content_type.startswith("multipart/form-data"):
        sent = False

        async def once():
            nonlocal sent
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, once).form()
        except Exception:
            return None
        value = form.get(CSRF_FIELD)
        await form.close()
        return value if isinstance(value, str) else None
    return None


async def _plain(send, status: int, message: str) -> None:
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{status}</title>"
        f"<link rel=stylesheet href=/static/app.css><main class=narrow><h1>{status}</h1>"
        f"<p>{escape(message)}</p></main></html>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
