"""The outbox and the sender: frozen recipients, one copy each, retries, bounces, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from monitor.config import load_config
from monitor.errors import DigestError, MailError
from monitor.outbox import (
    SendLock,
    freeze_outbox,
    outbox_counts,
    resolve_unknown,
    send_issue,
    unknown_recipients,
)
from monitor.store import open_db
from monitor.subscribers import add_subscriber, get_subscriber, unsubscribe_email
from tests.fixtures_mail import (
    MisbehavingHandler,
    SmtpServer,
    add_active,
    make_issue,
    simple_render,
)
from tests.helpers import ROOT, write_config


def _setup(tmp_path, server=None, **smtp):
    settings = server.smtp_settings if server else {"host": "127.0.0.1", "port": 9}
    config = load_config(
        write_config(tmp_path, smtp={**settings, "retry_backoff": "0.05s", **smtp})
    )
    return config, open_db(config.storage.database)


def test_freezing_takes_active_subscribers_once(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_active(db, config, 3)
    add_subscriber(db, config, "pending@example.org", consent={"how": "cli"}, status="pending")
    issue = make_issue(db)
    assert freeze_outbox(db, config, issue) == 3
    add_active(db, config, 2, prefix="late")
    assert freeze_outbox(db, config, issue) == 3
    assert outbox_counts(db, issue)["queued"] == 3


def test_every_recipient_gets_one_personalised_copy_and_the_issue_is_sent(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_active(db, config, 5, regions=["channel"])
    issue = make_issue(db)
    stats = send_issue(db, config, issue, render=simple_render)
    assert (stats.sent, stats.remaining) == (5, 0)
    copies = smtp_server.handler.copies_per_recipient()
    assert sorted(copies) == [f"member{i:04d}@example.org" for i in range(5)]
    assert set(copies.values()) == {1}
    for msg in smtp_server.handler.parsed():
        to = msg["To"].addresses[0].addr_spec
        assert f"for {to}" in msg.get_body(("plain",)).get_content()
    assert db.execute("SELECT state FROM digests WHERE id = ?", [issue]).fetchone()[0] == "sent"
    again = send_issue(db, config, issue, render=simple_render)
    assert again.sent == 0 and smtp_server.handler.count() == 5


def test_a_draft_is_not_sent(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_active(db, config, 1)
    with pytest.raises(DigestError, match="approve"):
        send_issue(db, config, make_issue(db, state="draft"), render=simple_render)
    assert smtp_server.handler.count() == 0


def test_unsubscribed_after_freezing_is_skipped(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    addresses = add_active(db, config, 3)
    issue = make_issue(db)
    freeze_outbox(db, config, issue)
    unsubscribe_email(db, addresses[1], how="page")
    stats = send_issue(db, config, issue, render=simple_render)
    assert (stats.sent, stats.skipped) == (2, 1)
    assert addresses[1] not in smtp_server.handler.copies_per_recipient()


def test_temporary_failures_are_retried_and_permanent_ones_mark_the_address_bounced(
    tmp_path, make_smtp_server
):
    grey, gone = "member0001@example.org", "member0002@example.org"
    server = make_smtp_server(MisbehavingHandler(temporary={grey: 2}, permanent={gone}))
    config, db = _setup(tmp_path, server)
    add_active(db, config, 4)
    issue = make_issue(db)
    stats = send_issue(db, config, issue, render=simple_render)
    assert (stats.sent, stats.bounced, stats.deferred) == (3, 1, 2)
    assert server.handler.rcpt_attempts[grey] == 3
    assert server.handler.rcpt_attempts[gone] == 1
    assert get_subscriber(db, gone)["status"] == "bounced"
    assert "550" in get_subscriber(db, gone)["bounce_reason"]
    assert server.handler.copies_per_recipient()[grey] == 1
    # The next issue is not sent to the bounced address at all.
    next_issue = make_issue(db, week="2026-W50")
    assert freeze_outbox(db, config, next_issue) == 3


def test_a_recipient_that_keeps_deferring_is_given_up_without_blocking_the_others(
    tmp_path, make_smtp_server
):
    server = make_smtp_server(MisbehavingHandler(temporary={"member0000@example.org": 99}))
    config, db = _setup(tmp_path, server, max_attempts=3)
    add_active(db, config, 3)
    issue = make_issue(db)
    stats = send_issue(db, config, issue, render=simple_render)
    assert (stats.sent, stats.failed) == (2, 1)
    assert server.handler.rcpt_attempts["member0000@example.org"] == 3
    assert get_subscriber(db, "member0000@example.org")["status"] == "active"


def test_a_connection_dropped_before_the_message_is_retried_once(tmp_path, make_smtp_server):
    victim = "member0003@example.org"
    server = make_smtp_server(MisbehavingHandler(drop_at_rcpt={victim}))
    config, db = _setup(tmp_path, server)
    add_active(db, config, 6)
    stats = send_issue(db, config, make_issue(db), render=simple_render)
    assert stats.sent == 6
    assert set(server.handler.copies_per_recipient().values()) == {1}
    assert len(server.handler.copies_per_recipient()) == 6


def test_a_connection_dropped_after_the_message_is_unknown_and_not_resent(
    tmp_path, make_smtp_server
):
    victim = "member0002@example.org"
    server = make_smtp_server(MisbehavingHandler(drop_after_data={victim}))
    config, db = _setup(tmp_path, server)
    add_active(db, config, 5)
    issue = make_issue(db)
    stats = send_issue(db, config, issue, render=simple_render)
    assert (stats.sent, stats.unknown) == (4, 1)
    assert [r["email"] for r in unknown_recipients(db, issue)] == [victim]
    send_issue(db, config, issue, render=simple_render)
    assert server.handler.copies_per_recipient()[victim] == 1  # stored once, not re-sent
    assert resolve_unknown(db, issue, resend=False) == 1
    assert outbox_counts(db, issue)["sent"] == 5


def test_smtp_server_down_keeps_everyone_queued_and_a_rerun_completes(tmp_path, smtp_server):
    config, db = _setup(tmp_path, None, timeout="2s")
    add_active(db, config, 4)
    issue = make_issue(db)
    with pytest.raises(MailError, match="Cannot connect"):
        send_issue(db, config, issue, render=simple_render)
    assert outbox_counts(db, issue)["queued"] == 4
    up = load_config(write_config(tmp_path, smtp={**smtp_server.smtp_settings}))
    assert send_issue(db, up, issue, render=simple_render).sent == 4
    assert set(smtp_server.handler.copies_per_recipient().values()) == {1}


def test_only_one_sender_at_a_time(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_active(db, config, 2)
    issue = make_issue(db)
    with SendLock(config), pytest.raises(MailError, match="Another sender"):
        send_issue(db, config, issue, render=simple_render)
    assert smtp_server.handler.count() == 0


def _sender(config_path, issue):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.outbox",
            "--config",
            str(config_path),
            "--render",
            "tests.fixtures_mail:simple_render",
            str(issue),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_kill_9_mid_send_then_restart_gives_every_recipient_exactly_one_copy(tmp_path):
    server = SmtpServer(MisbehavingHandler()).start()
    try:
        config_path = write_config(
            tmp_path, smtp={**server.smtp_settings, "retry_backoff": "0.05s"}
        )
        config = load_config(config_path)
        db = open_db(config.storage.database)
        addresses = add_active(db, config, 2000)
        issue = make_issue(db)
        for kill_after in (500, 1300):
            proc = _sender(config_path, issue)
            assert server.handler.wait_for(kill_after, timeout=120), proc.stderr.read()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            proc.stdout.close()
            proc.stderr.close()
            in_flight = db.execute(
                "SELECT count(*) FROM outbox WHERE issue_id = ? AND status = 'sending'", [issue]
            ).fetchone()[0]
            assert in_flight <= 1
        proc = _sender(config_path, issue)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        copies = server.handler.copies_per_recipient()
        unknown = unknown_recipients(db, issue)
        assert len(unknown) <= 2  # at most the one message in flight at each kill
        assert all(copies[row["email"]] <= 1 for row in unknown)
        # The operator's decision: re-send those that did not arrive, count the others as sent.
        arrived = [row["id"] for row in unknown if copies[row["email"]] == 1]
        lost = [row["id"] for row in unknown if copies[row["email"]] == 0]
        assert resolve_unknown(db, issue, resend=False, ids=arrived) == len(arrived)
        assert resolve_unknown(db, issue, resend=True, ids=lost) == len(lost)
        send_issue(db, config, issue, render=simple_render)
        copies = server.handler.copies_per_recipient()
        assert sorted(copies) == sorted(addresses)
        assert set(copies.values()) == {1}
        assert outbox_counts(db, issue)["sent"] == 2000
    finally:
        server.stop()


def test_someone_unsubscribing_during_the_send_gets_nothing_more(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    addresses = add_active(db, config, 6)
    issue = make_issue(db)

    def unsubscribe_the_last_one_early(stats):
        if stats.sent == 1:
            unsubscribe_email(db, addresses[-1], how="one-click")

    stats = send_issue(
        db, config, issue, render=simple_render, progress=unsubscribe_the_last_one_early
    )
    assert (stats.sent, stats.skipped) == (5, 1)
    assert addresses[-1] not in smtp_server.handler.copies_per_recipient()
