"""`monitor users ...`, `monitor datasette` and `monitor serve` from the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from monitor.cli import cli
from monitor.store import open_db
from monitor.web import auth
from tests.web_archive import insert_items

PASSWORD = "a long enough password"


def run(config_path, *args, env=None):
    result = CliRunner().invoke(
        cli, ["--config", str(config_path), *args], env=env, catch_exceptions=False
    )
    return result


def test_users_add_list_passwd_remove(config_path, config):
    result = run(config_path, "users", "add", "carla", "--role", "curator", "--password", PASSWORD)
    assert result.exit_code == 0 and "Added carla (curator)" in result.output
    listing = run(config_path, "users", "list").output
    assert "carla" in listing and "curator" in listing
    run(config_path, "users", "passwd", "carla", "--password", "another long password")
    db = open_db(config.storage.database)
    assert auth.check_login(db, "carla", "another long password", "127.0.0.1") is not None
    assert auth.check_login(db, "carla", PASSWORD, "127.0.0.1") is None
    run(config_path, "users", "remove", "carla")
    assert auth.find_user(db, "carla") is None
    db.close()


def test_users_add_refuses_a_short_password(config_path):
    from monitor.cli import main

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(config_path),
            "users",
            "add",
            "dan",
            "--role",
            "analyst",
            "--password",
            "short",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "at least 10 characters" in proc.stderr and "Traceback" not in proc.stderr
    assert main  # the same entry point as the console script


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def test_datasette_has_full_text_search_and_facets_and_hides_accounts(
    config_path, config, tmp_path
):
    db = open_db(config.storage.database)
    insert_items(db, 60)
    auth.add_user(db, "root", PASSWORD, "admin")
    db.close()
    meta = tmp_path / "meta.json"
    assert run(config_path, "datasette", "--metadata-out", str(meta)).exit_code == 0
    metadata = json.loads(meta.read_text())
    name = config.storage.database.stem
    assert metadata["databases"][name]["tables"]["items"]["fts_table"] == "items_fts"
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(config_path),
            "datasette",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/", proc)
        data = httpx.get(
            f"{base}/{name}/items.json",
            params={"_search": "Hamburg", "_shape": "objects"},
            timeout=10,
        ).json()
        assert data["rows"] and all("Hamburg" in (r["title"] + r["text"]) for r in data["rows"])
        assert (
            "source" in data["facet_results"]["results"]
            if "results" in data.get("facet_results", {})
            else "source" in data["facet_results"]
        )
        assert httpx.get(f"{base}/{name}/web_users.json", timeout=10).status_code == 403
        assert httpx.get(
            f"{base}/{name}.json", params={"sql": "select * from web_users"}, timeout=10
        ).status_code in (400, 403)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_serve_answers_on_the_configured_port(tmp_path):
    from tests.helpers import write_config

    port = _free_port()
    config_path = write_config(tmp_path, web={"port": port})
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config_path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, "MONITOR_SECRET_KEY": "x" * 32},
    )
    try:
        _wait(f"http://127.0.0.1:{port}/login", proc)
        page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert page.status_code == 200 and "Sign in" in page.text
        assert "server" not in page.headers
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert Path(config_path).exists()
