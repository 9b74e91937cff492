"""Accounts for the web desk: argon2 password hashes, server-side sessions, login rate limits.

Pure library functions on the archive connection, shared by `monitor users ...` and the web app;
nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from monitor.errors import WebAccountError
from monitor.store import transaction

ROLES = ("admin", "curator", "analyst")
MIN_PASSWORD_LENGTH = 10
# Login rate limit: at most this many failures per username, and per client address, per window.
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_IP = 20
FAILURE_WINDOW = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of both answers alike.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    email: str | None = None

    def has_role(self, *roles: str) -> bool:
        """Admins may do everything; other users need one of the roles named."""
        return self.role == "admin" or self.role in roles


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WebAccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def _check_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 64 or any(ch.isspace() or ord(ch) < 32 for ch in username):
        raise WebAccountError(
            f"{username!r} is not a usable user name (1-64 characters, no spaces)."
        )
    return username


def add_user(
    db: sqlite_utils.Database, username: str, password: str, role: str, email: str | None = None
) -> User:
    username = _check_username(username)
    if role not in ROLES:
        raise WebAccountError(f"The role {role!r} does not exist; use one of {', '.join(ROLES)}.")
    _check_password(password)
    if find_user(db, username):
        raise WebAccountError(f"The user {username!r} already exists.")
    now = _iso(_now())
    cursor = db.execute(
        """INSERT INTO web_users (username, email, password_hash, role, created_at, password_changed_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        [username, email, _hasher.hash(password), role, now, now],
    )
    return User(cursor.lastrowid, username, role, email)


def find_user(db: sqlite_utils.Database, username: str) -> User | None:
    row = db.execute(
        "SELECT id, username, role, email FROM web_users WHERE username = ?", [username.strip()]
    ).fetchone()
    return User(*row) if row else None


def get_user(db: sqlite_utils.Database, user_id: int) -> User | None:
    row = db.execute(
        "SELECT id, username, role, email FROM web_users WHERE id = ?", [user_id]
    ).fetchone()
    return User(*row) if row else None


def list_users(db: sqlite_utils.Database) -> list[dict]:
    return list(
        db.query(
            """SELECT u.id, u.username, u.role, u.email, u.created_at,
                  (SELECT max(at) FROM web_login_attempts a WHERE a.username = u.username AND ok = 1)
                    AS last_login
           FROM web_users u ORDER BY u.username"""
        )
    )


def set_password(db: sqlite_utils.Database, username: str, password: str) -> None:
    """Change the password and end the user's sessions everywhere."""
    user = find_user(db, username)
    if not user:
        raise WebAccountError(f"There is no user {username!r}.")
    _check_password(password)
    with transaction(db):
        db.execute(
            "UPDATE web_users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
            [_hasher.hash(password), _iso(_now()), user.id],
        )
        db.execute("DELETE FROM web_sessions WHERE user_id = ?", [user.id])


def remove_user(db: sqlite_utils.Database, username: str) -> None:
    user = find_user(db, username)
    if not user:
        raise WebAccountError(f"There is no user {username!r}.")
    with transaction(db):
        db.execute("DELETE FROM web_sessions WHERE user_id = ?", [user.id])
        db.execute("DELETE FROM web_users WHERE id = ?", [user.id])


class LoginThrottled(WebAccountError):
    pass


def check_login(
    db: sqlite_utils.Database, username: str, password: str, ip: str, now: datetime | None = None
) -> User | None:
    """The user when the password is right; None when wrong; LoginThrottled after too many failures.

    Every attempt is recorded; the throttle counts failures in the last FAILURE_WINDOW both for the
    username and for the client address, so guessing one account or many is slowed down.
    """
    now = now or _now()
    since = _iso(now - FAILURE_WINDOW)
    username = username.strip()[:64]
    by_user = db.execute(
        "SELECT count(*) FROM web_login_attempts WHERE username = ? AND ok = 0 AND at >= ?",
        [username, since],
    ).fetchone()[0]
    by_ip = db.execute(
        "SELECT count(*) FROM web_login_attempts WHERE ip = ? AND ok = 0 AND at >= ?", [ip, since]
    ).fetchone()[0]
    if by_user >= MAX_FAILURES_PER_USER or by_ip >= MAX_FAILURES_PER_IP:
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        raise LoginThrottled(
            f"Too many failed sign-in attempts. Wait {minutes} minutes and try again."
        )
    row = db.execute(
        "SELECT id, username, role, email, password_hash FROM web_users WHERE username = ?",
        [username],
    ).fetchone()
    ok = False
    try:
        ok = _hasher.verify(row[4] if row else _DUMMY_HASH, password) and row is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    db.execute(
        "INSERT INTO web_login_attempts (username, ip, at, ok) VALUES (?, ?, ?, ?)",
        [username, ip, _iso(now), int(ok)],
    )
    if not ok:
        return None
    if _hasher.check_needs_rehash(row[4]):
        db.execute(
            "UPDATE web_users SET password_hash = ? WHERE id = ?", [_hasher.hash(password), row[0]]
        )
    return User(row[0], row[1], row[2], row[3])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(
    db: sqlite_utils.Database, user: User, max_age: float, ip: str = "", user_agent: str = ""
) -> str:
    """A new random session token (for the cookie); only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = _now()
    with transaction(db):
        db.execute("DELETE FROM web_sessions WHERE expires_at < ?", [_iso(now)])
        db.execute(
            "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at, ip, user_agent) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                _token_hash(token),
                user.id,
                _iso(now),
                _iso(now + timedelta(seconds=max_age)),
                ip,
                user_agent[:300],
            ],
        )
    return token


def session_user(db: sqlite_utils.Database, token: str | None) -> User | None:
    """The signed-in user for a session token, or None when unknown or expired."""
    if not token or len(token) > 100:
        return None
    row = db.execute(
        """SELECT u.id, u.username, u.role, u.email FROM web_sessions s
           JOIN web_users u ON u.id = s.user_id
           WHERE s.token_hash = ? AND s.expires_at > ?""",
        [_token_hash(token), _iso(_now())],
    ).fetchone()
    return User(*row) if row else None


def end_session(db: sqlite_utils.Database, token: str | None) -> None:
    if token:
        db.execute("DELETE FROM web_sessions WHERE token_hash = ?", [_token_hash(token)])


def app_secret(db: sqlite_utils.Database, name: str = "secret_key") -> str:
    """A random secret generated once and kept in the archive (used when no env variable is set)."""
    db.execute(
        "INSERT OR IGNORE INTO web_settings (key, value) VALUES (?, ?)",
        [name, secrets.token_urlsafe(48)],
    )
    return db.execute("SELECT value FROM web_settings WHERE key = ?", [name]).fetchone()[0]
