"""The whole web app on loopback with a week of stories and a loopback SMTP server, for the desk and
member tests: its [web] base_url is the server's own address, so the links in mails work."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import uvicorn

from monitor.config import load_config
from monitor.store import open_db
from monitor.web.app import create_app
from tests.fixtures_digest import corpus_sources, fill_week
from tests.fixtures_mail import RecordingHandler, SmtpServer
from tests.fixtures_web import WebServer
from tests.helpers import write_config


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve(config, sock: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", lifespan="on",
                                           limit_concurrency=200))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture
def site_web(tmp_path, monkeypatch):
    """(WebServer, SmtpServer): the app with 2026-W49 filled (40 stories, 5 per section), mail to
    loopback."""
    monkeypatch.setenv("MONITOR_SECRET_KEY", "test-secret-" + os.urandom(8).hex())
    mail = SmtpServer(RecordingHandler()).start()
    sock = _bound_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    path = write_config(tmp_path, sources=corpus_sources(), web={"base_url": base_url},
                        digest={"base_url": base_url}, smtp=mail.smtp_settings)
    config = load_config(path)
    db = open_db(config.storage.database)
    db.stories = fill_week(db, config, stories=40)
    server, thread = serve(config, sock)
    web = WebServer(base_url, config, db, server, thread)
    try:
        yield web, mail
    finally:
        server.should_exit = True
        thread.join(10)
        db.close()
        mail.stop()
