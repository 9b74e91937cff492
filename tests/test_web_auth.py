"""Accounts, sessions, CSRF and security headers, over HTTP against the app run by uvicorn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import WebAccountError
from monitor.web import auth
from tests.fixtures_web import PASSWORD, csrf_from


def test_sign_in_and_out(web):
    web.add_user("ana", "analyst")
    client = web.login("ana")
    home = client.get("/")
    assert "Signed in as" in home.text and "ana" in home.text
    token = csrf_from(home.text)
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert "Signed in as" not in client.get("/").text


def test_wrong_password_is_refused_with_a_message(web):
    web.add_user("ana", "analyst")
    client = web.client()
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login", data={"username": "ana", "password": "wrong password!", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "not right" in response.text


def test_sign_in_attempts_are_rate_limited(web):
    web.add_user("ana", "analyst")
    client = web.client()
    token = csrf_from(client.get("/login").text)
    for _ in range(auth.MAX_FAILURES_PER_USER):
        client.post(
            "/login", data={"username": "ana", "password": "guess guess guess", "csrf_token": token}
        )
    # Even the right password is refused while the account is throttled.
    response = client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.text


def test_post_without_csrf_token_is_refused(web):
    web.add_user("ana", "analyst")
    client = web.client()
    client.get("/login")
    response = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert response.status_code == 403
    assert "expired" in response.text
    other = web.client()  # a token minted for another browser's cookie does not work either
    token = csrf_from(other.get("/login").text)
    response = client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 403


def test_logout_by_get_changes_nothing(web):
    web.add_user("ana", "analyst")
    client = web.login("ana")
    assert client.get("/logout").status_code == 405
    assert "Signed in as" in client.get("/").text


def test_security_headers_and_cookie_flags(web):
    response = web.client().get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert '<script src="/static/htmx.min.js"' in response.text
    assert "<script>" not in response.text
    assert web.client().get("/static/htmx.min.js").status_code == 200


def test_expired_session_signs_out(web):
    user = web.add_user("ana", "analyst")
    client = web.login("ana")
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    web.db.execute("UPDATE web_sessions SET expires_at = ? WHERE user_id = ?", [past, user.id])
    assert "Signed in as" not in client.get("/").text


def test_sign_in_redirects_only_to_local_paths(web):
    web.add_user("ana", "analyst")
    client = web.client()
    token = csrf_from(client.get("/login?next=//evil.example/").text)
    response = client.post(
        "/login",
        data={
            "username": "ana",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert response.headers["location"] == "/"


def test_account_rules(db):
    with pytest.raises(WebAccountError, match="at least"):
        auth.add_user(db, "bob", "short", "curator")
    with pytest.raises(WebAccountError, match="role"):
        auth.add_user(db, "bob", PASSWORD, "editor")
    auth.add_user(db, "bob", PASSWORD, "curator")
    with pytest.raises(WebAccountError, match="already exists"):
        auth.add_user(db, "BOB", PASSWORD, "curator")
    stored = db.execute("SELECT password_hash FROM web_users").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
