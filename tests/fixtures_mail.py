"""Real SMTP servers on loopback (aiosmtpd) for the mail tests: one that stores what it receives,
one that misbehaves on chosen recipients (4xx, 5xx, a dropped connection), and a tiny renderer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy

import pytest
from aiosmtpd.smtp import SMTP


class RecordingHandler:
    """Stores every accepted message: (mail_from, rcpt_tos, raw bytes)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or envelope.content,
                )
            )
            self.arrived.notify_all()
        return "250 OK stored"

    # -- what tests read --
    def parsed(self) -> list:
        with self.lock:
            raws = [raw for _, _, raw in self.messages]
        return [email.message_from_bytes(raw, policy=policy.default) for raw in raws]

    def copies_per_recipient(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(r for _, rcpts, _ in self.messages for r in rcpts)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def wait_for(self, n: int, timeout: float = 60.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.messages) >= n, timeout)


class MisbehavingHandler(RecordingHandler):
    """temporary: address -> how many times to answer 451 first; permanent: addresses answered
    550; drop_at_rcpt: addresses whose first RCPT closes the connection; drop_after_data:
    addresses whose first message is stored and then the connection closed without an answer."""

    def __init__(self, temporary=None, permanent=(), drop_at_rcpt=(), drop_after_data=()):
        super().__init__()
        self.temporary = dict(temporary or {})
        self.permanent = set(permanent)
        self.drop_at_rcpt = set(drop_at_rcpt)
        self.drop_after_data = set(drop_after_data)
        self.rcpt_attempts: collections.Counter = collections.Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_attempts[address] += 1
        if address in self.drop_at_rcpt:
            self.drop_at_rcpt.discard(address)
            server.transport.close()
            return "421 closing"
        if address in self.permanent:
            return "550 5.1.1 No such user here"
        if self.temporary.get(address, 0) > 0:
            self.temporary[address] -= 1
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        status = await super().handle_DATA(server, session, envelope)
        dropped = [r for r in envelope.rcpt_tos if r in self.drop_after_data]
        if dropped:
            self.drop_after_data.difference_update(dropped)
            server.transport.close()
        return status


class SmtpServer:
    """aiosmtpd on 127.0.0.1, ephemeral port, in its own event-loop thread."""

    def __init__(self, handler, **smtp_kwargs):
        self.handler = handler
        self.smtp_kwargs = {"enable_SMTPUTF8": True, "hostname": "mx.test", **smtp_kwargs}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None
        self.port = 0

    def start(self) -> SmtpServer:
        self.thread.start()

        async def create():
            return await self.loop.create_server(
                lambda: SMTP(self.handler, loop=self.loop, **self.smtp_kwargs), "127.0.0.1", 0
            )

        self.server = asyncio.run_coroutine_threadsafe(create(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close():
            self.server.close()
            await self.server.wait_closed()

        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def smtp_settings(self) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "security": "none"}


@pytest.fixture
def smtp_server():
    server = SmtpServer(RecordingHandler()).start()
    yield server
    server.stop()


@pytest.fixture
def make_smtp_server():
    servers = []

    def make(handler=None, **kwargs):
        server = SmtpServer(handler or RecordingHandler(), **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# -- a tiny renderer (the real one is monitor.render; these tests must not depend on it) --------


@dataclass
class SimpleMessage:
    subject: str
    html: str
    text: str
    web_url: str = ""


def simple_render(config, db, issue_id, subscriber=None, *, test=False):
    """Personalised enough to check: names the recipient and their regions."""
    from monitor.subscribers import preferences_url, unsubscribe_url

    who = subscriber["email"] if subscriber else "test"
    regions = ", ".join(subscriber["regions"]) if subscriber and subscriber["regions"] else "all"
    unsub = unsubscribe_url(config, subscriber) if subscriber else "#"
    prefs = preferences_url(config, subscriber) if subscriber else "#"
    text = (
        f"Issue {issue_id} for {who}\nRegions: {regions}\n\n"
        + "A story about borders.\n" * 40
        + f"\nUnsubscribe: {unsub}\nPreferences: {prefs}\n"
    )
    html = (
        f"<html><body><h1>Issue {issue_id}</h1><p>For {who}</p><p>Regions: {regions}</p>"
        + "<p>A story about borders.</p>" * 40
        + f'<p><a href="{unsub}">Unsubscribe</a> <a href="{prefs}">Preferences</a></p>'
        "</body></html>"
    )
    return SimpleMessage(subject=f"Border Monitor Weekly #{issue_id}", html=html, text=text)


def make_issue(db, state: str = "approved", week: str = "2026-W49") -> int:
    """A digest row in the given state, whatever columns the digest table has (it is not ours)."""
    columns = list(db.query("PRAGMA table_info(digests)"))
    values = {}
    for col in columns:
        if col["pk"] or not col["notnull"] or col["dflt_value"] is not None:
            continue
        values[col["name"]] = (
            "2026-12-04T09:00:00Z"
            if col["name"].endswith("_at") or col["name"].startswith("window")
            else "x"
        )
    values.update({"week": week, "state": state, "title": "Border Monitor Weekly"})
    names = ", ".join(values)
    cursor = db.execute(
        f"INSERT INTO digests ({names}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )
    return cursor.lastrowid


def add_active(db, config, n: int, prefix: str = "member", **fields) -> list[str]:
    """n active subscribers member0001@example.org ...; returns their addresses."""
    from monitor.store import transaction
    from monitor.subscribers import _insert, validate_candidate

    addresses = [f"{prefix}{i:04d}@example.org" for i in range(n)]
    now = datetime.now(UTC)
    consent = {
        "consent_at": "2026-11-01T10:00:00Z",
        "consent_how": "test",
        "consent_text_version": "v1",
        "consent_ip": None,
        "consent_user_agent": None,
    }
    with transaction(db):
        for address in addresses:
            _insert(db, validate_candidate(config, address, **fields), "active", consent, now)
    return addresses
