"""The web app served by uvicorn on an ephemeral loopback port, with accounts for each role."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn

from monitor.config import load_config
from monitor.store import open_db
from monitor.web import auth
from monitor.web.app import create_app

PASSWORD = "correct horse battery"


@dataclass
class WebServer:
    base_url: str
    config: object
    db: object
    server: uvicorn.Server
    thread: threading.Thread
    users: dict = field(default_factory=dict)

    def add_user(self, username: str, role: str, password: str = PASSWORD):
        user = auth.add_user(self.db, username, password, role)
        self.users[username] = password
        return user

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=10, **kwargs)

    def login(self, username: str, password: str | None = None) -> httpx.Client:
        """An httpx client with a signed-in session (goes through the real sign-in form)."""
        client = self.client()
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login",
            data={
                "username": username,
                "csrf_token": token,
                "password": password or self.users[username],
            },
        )
        assert response.status_code == 303, response.text
        return client


def csrf_from(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def start_server(config, db_path=None) -> tuple[uvicorn.Server, threading.Thread, str]:
    app = create_app(config, db_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", limit_concurrency=200)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def web_config(config_path, monkeypatch):
    monkeypatch.setenv("MONITOR_SECRET_KEY", "test-secret-" + os.urandom(8).hex())
    return load_config(config_path)


@pytest.fixture
def web(web_config):
    server, thread, base_url = start_server(web_config)
    db = open_db(web_config.storage.database, migrate=False)
    yield WebServer(base_url, web_config, db, server, thread)
    server.should_exit = True
    thread.join(10)
    db.close()
