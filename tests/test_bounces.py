"""Bounce reports (DSN) and complaints (ARF) read from mbox, Maildir and .eml folders."""

from __future__ import annotations

import mailbox

import pytest
from click.testing import CliRunner

from monitor.bounces import parse_report, process_path
from monitor.cli import cli
from monitor.subscribers import add_subscriber, get_subscriber, is_suppressed


def dsn(
    recipient: str,
    status: str = "5.1.1",
    action: str = "failed",
    report_id: str = "<dsn1@mx>",
    original_id: str = "<issue1.1.abc@example.org>",
) -> bytes:
    """A bounce as Postfix writes it: multipart/report with a message/delivery-status part."""
    boundary = "BOUNDARY-42"
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: digest@example.org\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {report_id}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
        f' boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Fri, 4 Dec 2026 10:00:01 +0100\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: digest@example.org\r\nTo: {recipient}\r\nMessage-ID: {original_id}\r\n"
        f"Subject: Border Monitor Weekly\r\n\r\n--{boundary}--\r\n"
    ).encode()


def complaint(recipient: str) -> bytes:
    boundary = "ARF-1"
    return (
        "From: feedback@mailbox.example.net\r\nTo: digest@example.org\r\nSubject: complaint\r\n"
        "Message-ID: <arf1@mailbox.example.net>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: digest@example.org\r\nTo: {recipient}\r\nSubject: Border Monitor Weekly\r\n\r\nHi\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def not_a_bounce() -> bytes:
    return b"From: someone@example.net\r\nSubject: thanks for the digest\r\n\r\nGreat issue!\r\n"


@pytest.fixture
def members(config, db):
    for address in (
        "gone@example.org",
        "full@example.org",
        "angry@example.org",
        "fine@example.org",
    ):
        add_subscriber(db, config, address, consent={"how": "cli"})
    return db


def _messages():
    return [
        dsn("Gone@Example.org", report_id="<d1@mx>"),
        dsn("full@example.org", status="4.2.2", action="delayed", report_id="<d2@mx>"),
        complaint("angry@example.org"),
        not_a_bounce(),
    ]


def _check(db, report):
    assert (report.messages, report.hard, report.soft, report.complaints, report.not_reports) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert get_subscriber(db, "gone@example.org")["status"] == "bounced"
    assert "5.1.1" in get_subscriber(db, "gone@example.org")["bounce_reason"]
    assert get_subscriber(db, "full@example.org")["status"] == "active"
    assert get_subscriber(db, "angry@example.org")["status"] == "complained"
    assert is_suppressed(db, "angry@example.org") == "complained"
    assert get_subscriber(db, "fine@example.org")["status"] == "active"


def test_dsn_fields_are_read():
    [finding] = parse_report(dsn("Anna@Example.org"))
    assert (finding.kind, finding.recipient, finding.status) == (
        "hard",
        "anna@example.org",
        "5.1.1",
    )
    assert finding.original_message_id == "<issue1.1.abc@example.org>"
    assert parse_report(not_a_bounce()) is None


def test_folder_of_eml_files(members, tmp_path):
    folder = tmp_path / "bounces"
    folder.mkdir()
    for i, raw in enumerate(_messages()):
        (folder / f"{i}.eml").write_bytes(raw)
    _check(members, process_path(members, folder))


def test_mbox_file(members, tmp_path):
    box = mailbox.mbox(str(tmp_path / "bounces.mbox"))
    for raw in _messages():
        box.add(raw)
    box.close()
    _check(members, process_path(members, tmp_path / "bounces.mbox"))


def test_maildir_and_processing_twice_changes_nothing(members, tmp_path):
    box = mailbox.Maildir(str(tmp_path / "Maildir"))
    for raw in _messages():
        box.add(raw)
    _check(members, process_path(members, tmp_path / "Maildir"))
    again = process_path(members, tmp_path / "Maildir")
    assert again.marked == [] and again.already_seen == 2


def test_cli_bounces_process_reports_what_changed(config_path, members, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.eml").write_bytes(dsn("gone@example.org"))
    result = CliRunner().invoke(
        cli, ["--config", str(config_path), "bounces", "process", str(folder)]
    )
    assert result.exit_code == 0, result.output
    assert "marked gone@example.org" in result.output
    assert "1 hard bounces" in result.output


def test_cli_subscriber_commands_round_trip(config_path, tmp_path):
    run = CliRunner()

    def monitor(*args):
        return run.invoke(cli, ["--config", str(config_path), *args])

    assert (
        monitor(
            "subscribers", "add", " Anna@Example.org ", "--name", "Anna", "--region", "channel"
        ).exit_code
        == 0
    )
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("email,name\nbob@example.org,Bob\ncarl@bücher.de,Carl\n", encoding="utf-8")
    assert "2 subscribers added" in monitor("subscribers", "import", str(csv_path)).output
    listed = monitor("subscribers", "list").output
    assert "anna@example.org" in listed and "3 active" in listed
    assert '"name": "Anna"' in monitor("subscribers", "export", "anna@example.org").output
    assert "unsubscribed" in monitor("subscribers", "remove", "bob@example.org").output
    assert "Erased" in monitor("subscribers", "remove", "carl@bücher.de", "--erase").output
    assert "1 active" in monitor("subscribers", "list").output


def test_a_mail_through_the_list_unsubscribe_mailto_link_unsubscribes(
    config_path, config, db, tmp_path
):
    from urllib.parse import unquote, urlsplit

    from monitor.subscribers import unsubscribe_mailto

    sub = add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    link = urlsplit(unsubscribe_mailto(config, sub))
    subject = unquote(link.query.split("subject=", 1)[1])
    folder = tmp_path / "unsub"
    folder.mkdir()
    (folder / "1.eml").write_bytes(
        f"From: anna@example.org\r\nTo: {link.path}\r\nSubject: {subject}\r\n\r\n\r\n".encode()
    )
    (folder / "2.eml").write_bytes(
        b"From: x@example.org\r\nSubject: unsubscribe forged\r\n\r\n\r\n"
    )
    result = CliRunner().invoke(
        cli, ["--config", str(config_path), "bounces", "process", str(folder)]
    )
    assert result.exit_code == 0, result.output
    assert "1 unsubscribe requests" in result.output
    after = get_subscriber(db, "anna@example.org")
    assert (after["status"], after["unsubscribe_how"]) == ("unsubscribed", "mailto")
