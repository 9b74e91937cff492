"""`monitor digest ...` from the command line: a week becomes a draft, is curated, previewed,
test-sent, approved and sent to a loopback SMTP server."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from monitor import digest
from monitor.cli import cli
from monitor.store import open_db
from tests.fixtures_digest import WEEK, add_hostile_story, fill_week, write_digest_config
from tests.helpers import CORPUS, ROOT


def _run(config, *args, input=None):
    result = CliRunner().invoke(cli, ["--config", str(config.path), *args], input=input,
                                catch_exceptions=True)
    return result


def _ok(config, *args, input=None):
    result = _run(config, *args, input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture
def week(tmp_path, smtp_server):
    """A config pointed at the loopback SMTP server and an archive holding 30 stories of 2026-W49."""
    config = write_digest_config(tmp_path, smtp=smtp_server.smtp_settings | {"rate_limit": 0})
    db = open_db(config.storage.database)
    db.stories = fill_week(db, config, stories=30)
    db.close()
    return config


def test_the_whole_cycle_from_the_cli(week, smtp_server, tmp_path):
    config = week
    out = _ok(config, "digest", "draft", "--week", WEEK, "--by", "anna")
    assert out.startswith("Drafted 2026-W49: ") and "stories in 8 sections" in out

    assert _ok(config, "digest", "list").startswith("2026-W49  draft")
    shown = _ok(config, "digest", "show", "--week", WEEK)
    assert "== Mediterranean (mediterranean, " in shown and "[draft]" in shown
    data = json.loads(_ok(config, "digest", "show", "--week", WEEK, "--json"))
    first = data["sections"][0]["entries"][0]["story"]
    second = data["sections"][0]["entries"][1]["story"]

    assert "New headline for" in _ok(config, "digest", "edit", "--week", WEEK, "--by", "ben",
                                     "headline", str(first), "Forty people rescued off Lampedusa")
    _ok(config, "digest", "edit", "--week", WEEK, "--by", "ben", "move", str(second), "--position", "1")
    _ok(config, "digest", "edit", "--week", WEEK, "--by", "ben", "intro", "Dear members, a hard week.")
    _ok(config, "digest", "edit", "--week", WEEK, "--by", "ben", "exclude",
        str(data["sections"][1]["entries"][0]["story"]))
    history = _ok(config, "digest", "history", "--week", WEEK)
    assert [line.split()[2] for line in history.splitlines()] == ["headline", "move", "intro", "exclude"]
    assert all(line.split()[1] == "ben" for line in history.splitlines())

    page = tmp_path / "preview.html"
    text = tmp_path / "preview.txt"
    out = _ok(config, "digest", "preview", "--week", WEEK, "--out", str(page), "--text", str(text))
    assert "KB HTML" in out and "OVER" not in out
    html = page.read_text(encoding="utf-8")
    assert html.index(">Forty people rescued off Lampedusa<") > 0
    assert "Dear members, a hard week." in text.read_text(encoding="utf-8")
    web = tmp_path / "web.html"
    _ok(config, "digest", "preview", "--week", WEEK, "--web", "--out", str(web))
    assert "<article class=\"story\">" in web.read_text(encoding="utf-8")

    from monitor.subscribers import add_subscriber

    db = open_db(config.storage.database)
    for n in range(3):
        add_subscriber(db, config, f"member{n}@ngo.example", name=f"Member {n}",
                       consent={"how": "cli", "text_version": "2026-1"},
                       regions=["channel"] if n == 2 else None)
    db.close()

    out = _ok(config, "digest", "send", "--week", WEEK, "--test", "curator@ngo.example")
    assert "Sent a test copy of 2026-W49 to curator@ngo.example" in out
    assert smtp_server.handler.wait_for(1, 20)
    test_mail = smtp_server.handler.parsed()[0]
    assert test_mail["Subject"].startswith("[TEST] ")
    assert "Forty people rescued off Lampedusa" in test_mail.get_body(("plain",)).get_content()

    db = open_db(config.storage.database)
    late = digest.is_late(db, 1)
    db.close()
    out = _ok(config, "digest", "approve", "--week", WEEK, "--by", "anna", "--yes")
    assert out.startswith("Approved 2026-W49")
    assert "late" in out if late else "late" not in out
    refused = _run(config, "digest", "edit", "--week", WEEK, "--by", "ben", "intro", "More")
    assert "edits are closed" in str(refused.exception)

    out = _ok(config, "digest", "send", "--week", WEEK)
    assert "3 sent" in out
    assert smtp_server.handler.wait_for(4, 20)
    copies = smtp_server.handler.copies_per_recipient()
    assert {f"member{n}@ngo.example" for n in range(3)} <= set(copies)
    assert all(copies[f"member{n}@ngo.example"] == 1 for n in range(3))
    mail = next(m for m in smtp_server.handler.parsed() if m["To"].addresses[0].username == "member0")
    body = mail.get_body(("html",)).get_content()
    assert "Forty people rescued off Lampedusa" in body and "Unsubscribe" in body
    assert "[sent]" in _ok(config, "digest", "show", "--week", WEEK)
    # member2 chose the Channel: that section plus EU-wide developments, nothing else.
    mail = next(m for m in smtp_server.handler.parsed() if m["To"].addresses[0].username == "member2")
    body = mail.get_body(("html",)).get_content()
    assert 'id="channel"' in body and 'id="eu-policy"' in body
    assert 'id="mediterranean"' not in body and 'id="balkan-route"' not in body
    assert "THE CHANNEL" in mail.get_body(("plain",)).get_content()


def test_late_approval_asks_and_no_means_no(tmp_path):
    config = write_digest_config(tmp_path)
    db = open_db(config.storage.database)
    fill_week(db, config, stories=8)
    digest.draft_issue(db, config, WEEK, now=datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    # Make the send time pass: the issue is now late whatever the clock says.
    db.execute("UPDATE digests SET send_at = '2000-01-07T09:00:00Z'")
    db.close()
    result = _run(config, "digest", "approve", "--week", WEEK, "--by", "anna", input="n\n")
    assert "has passed" in result.output
    assert "was not approved" in str(result.exception)
    db = open_db(config.storage.database)
    assert digest.find_issue(db, WEEK)["state"] == "draft"
    db.close()
    result = _run(config, "digest", "approve", "--week", WEEK, "--by", "anna", input="y\n")
    assert result.exit_code == 0 and "late" in result.output


def test_errors_are_one_sentence_without_traceback(tmp_path):
    config = write_digest_config(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config.path), "digest", "draft",
                           "--week", "2026-W40"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: No relevant stories were published for 2026-W40")
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config.path), "digest", "show",
                           "--week", "2026-W40"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "There is no digest issue for 2026-W40 yet" in proc.stderr


def test_hostile_story_preview_is_safe(tmp_path):
    config = write_digest_config(tmp_path)
    db = open_db(config.storage.database)
    fill_week(db, config, stories=5)
    add_hostile_story(db)
    db.close()
    _ok(config, "digest", "draft", "--week", WEEK)
    out = tmp_path / "p.html"
    _ok(config, "digest", "preview", "--week", WEEK, "--out", str(out))
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and 'href="javascript:' not in html


class _ArticleHandler(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.startswith("/news/"):
            body, status = self.page, 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_add_an_article_by_url(tmp_path):
    fundus = json.loads((CORPUS / "articles" / "fundus" / "ground-truth-flat.json").read_text())
    name = "es/ElPais_2024_10_15.html.gz"
    _ArticleHandler.page = gzip.decompress((CORPUS / "articles" / "fundus" / name).read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ArticleHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = write_digest_config(tmp_path)
        db = open_db(config.storage.database)
        fill_week(db, config, stories=5)
        db.close()
        _ok(config, "digest", "draft", "--week", WEEK)
        url = f"http://127.0.0.1:{server.server_address[1]}/news/deportation-centres"
        out = _ok(config, "digest", "edit", "--week", WEEK, "--by", "anna", "add", url, "--section", "eu-policy")
        assert out.startswith(f"Added {url}")
        data = json.loads(_ok(config, "digest", "show", "--week", WEEK, "--json"))
        eu = next(s for s in data["sections"] if s["slug"] == "eu-policy")["entries"]
        # The page names its canonical address, which the crawler keeps.
        assert eu[-1]["manual"] and eu[-1]["url"] in (url, fundus[name]["url"])
        assert eu[-1]["headline"] == fundus[name]["title"].strip()
        assert eu[-1]["summary"]
        # Survives a re-draft (the item is outside the week's window by date).
        _ok(config, "digest", "draft", "--week", WEEK)
        data = json.loads(_ok(config, "digest", "show", "--week", WEEK, "--json"))
        eu = next(s for s in data["sections"] if s["slug"] == "eu-policy")["entries"]
        assert eu[-1]["headline"] == fundus[name]["title"].strip()
        bad = _run(config, "digest", "edit", "--week", WEEK, "add", "javascript:alert(1)")
        assert "is not an http:// or https:// address" in str(bad.exception)
    finally:
        server.shutdown()
        server.server_close()
