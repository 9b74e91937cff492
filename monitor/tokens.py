"""Signed, expiring tokens for the links in our mails (confirm, unsubscribe, preferences).

The key comes from the environment variable named by `[web] secret_env`, else from a random key
generated once into `secret.key` beside the database (mode 0600). Never logs or prints the key.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from monitor.errors import SubscriberError

# How long a link stays valid. Confirmation links are short-lived (the sign-up is fresh); the
# unsubscribe and preference links live in archived mails, so they stay valid for a year.
MAX_AGE = {
    "confirm": 7 * 86400,
    "unsubscribe": 366 * 86400,
    "preferences": 366 * 86400,
}


# Generated keys already read, by database (a sender signs four links per message).
_FILE_KEYS: dict[Path, bytes] = {}


def secret_key_path(config) -> Path:
    return Path(config.storage.database).parent / "secret.key"


def secret_key(config) -> bytes:
    """The signing key: $<secret_env>, else the generated key file (created on first use)."""
    env_name = config.web.secret_env
    from_env = os.environ.get(env_name) if env_name else None
    if from_env:
        return from_env.encode("utf-8")
    cached = _FILE_KEYS.get(config.storage.database)
    if cached is not None:
        return cached
    path = secret_key_path(config)
    try:
        key = path.read_bytes().strip()
        _FILE_KEYS[config.storage.database] = key
        return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode("ascii")
    try:
        # O_EXCL: two processes starting at once must end up with the same key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    _FILE_KEYS[config.storage.database] = key
    return key


def _serializer(config, purpose: str) -> URLSafeTimedSerializer:
    return _cached_serializer(secret_key(config), purpose)


@lru_cache(maxsize=16)
def _cached_serializer(key: bytes, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=f"border-monitor.{purpose}")


def make_token(config, purpose: str, subscriber_key: str) -> str:
    if purpose not in MAX_AGE:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _serializer(config, purpose).dumps(subscriber_key)


def read_token(config, purpose: str, token: str, max_age: float | None = None) -> str:
    """The subscriber key inside a valid token; SubscriberError for a broken or expired one."""
    age = MAX_AGE[purpose] if max_age is None else max_age
    try:
        value = _serializer(config, purpose).loads(token, max_age=age)
    except SignatureExpired:
        raise SubscriberError(f"This {purpose} link has expired; request a new one.") from None
    except BadSignature:
        raise SubscriberError(f"This {purpose} link is not valid (it may be incomplete).") from None
    if not isinstance(value, str):
        raise SubscriberError(f"This {purpose} link is not valid.")
    return value
