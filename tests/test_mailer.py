"""Messages as a mailbox provider sees them: headers, MIME order, DKIM, TLS, connection reuse."""

from __future__ import annotations

import base64
import datetime as dt
import email
import ssl
from email import policy
from email.utils import parsedate_to_datetime

import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from monitor.config import load_config
from monitor.errors import MailError
from monitor.mailer import SmtpSender, build_message, make_message_id
from monitor.outbox import send_issue, send_test
from monitor.store import open_db
from monitor.subscribers import add_subscriber
from tests.fixtures_mail import RecordingHandler, SmtpServer, make_issue, simple_render
from tests.helpers import write_config


def _setup(tmp_path, server, **smtp):
    config = load_config(write_config(tmp_path, smtp={**server.smtp_settings, **smtp}))
    return config, open_db(config.storage.database)


def _one_issue_mail(tmp_path, server, **smtp):
    config, db = _setup(tmp_path, server, **smtp)
    add_subscriber(
        db,
        config,
        "anna@example.org",
        name="Anna Berg",
        regions=["channel"],
        consent={"how": "cli"},
    )
    send_issue(db, config, make_issue(db), render=simple_render)
    [raw] = [m[2] for m in server.handler.messages]
    return config, raw


def test_issue_mail_has_the_bulk_sender_headers(tmp_path, smtp_server):
    config, raw = _one_issue_mail(tmp_path, smtp_server)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Message-ID"].startswith("<issue") and msg["Message-ID"].endswith("@example.org>")
    assert abs(parsedate_to_datetime(msg["Date"]) - dt.datetime.now(dt.UTC)) < dt.timedelta(
        minutes=5
    )
    assert msg["List-Id"] == '"Border Monitor Weekly" <weekly.border-monitor.example.org>'
    targets = [t.strip(" <>") for t in msg["List-Unsubscribe"].split(",")]
    assert targets[0].startswith(config.web.base_url + "/unsubscribe/")
    assert targets[1].startswith("mailto:unsubscribe@example.org?subject=unsubscribe")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["To"].addresses[0].display_name == "Anna Berg"
    assert msg["From"].addresses[0].addr_spec == "digest@example.org"


def test_issue_mail_is_multipart_alternative_with_text_first(tmp_path, smtp_server):
    _, raw = _one_issue_mail(tmp_path, smtp_server)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "Regions: channel" in msg.get_body(("plain",)).get_content()
    assert "<h1>Issue" in msg.get_body(("html",)).get_content()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def _dkim_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name, timeout=5):
        return record if name == b"mail2026._domainkey.example.org." else None

    return path, dns


def test_dkim_signature_verifies_and_covers_the_list_headers(tmp_path, smtp_server):
    key_path, dns = _dkim_key(tmp_path)
    _, raw = _one_issue_mail(
        tmp_path,
        smtp_server,
        dkim_key_file=str(key_path),
        dkim_selector="mail2026",
        dkim_domain="example.org",
    )
    assert dkim.verify(raw, dnsfunc=dns)
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    signed = {
        h.strip().lower()
        for h in " ".join(msg["DKIM-Signature"].split()).split("h=")[1].split(";")[0].split(":")
    }
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    } <= signed
    forged = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"List-Unsubscribe-Post: List-Unsubscribe=Nope",
    )
    assert not dkim.verify(forged, dnsfunc=dns)


def test_one_connection_is_reused_for_a_whole_issue(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    for i in range(30):
        add_subscriber(db, config, f"m{i}@example.org", consent={"how": "cli"})
    stats = send_issue(db, config, make_issue(db), render=simple_render)
    assert stats.sent == 30 and stats.connections == 1


def test_a_newline_in_a_subject_cannot_add_headers(tmp_path, smtp_server):
    config, _ = _setup(tmp_path, smtp_server)
    data = build_message(
        config,
        to_address="anna@example.org",
        subject="Hi\r\nBcc: x@evil.org",
        text="body",
        message_id=make_message_id(config, "t"),
    )
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Bcc"] is None and msg["Subject"] == "Hi Bcc: x@evil.org"


def test_test_send_goes_only_to_the_given_address(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    send_test(
        db, config, make_issue(db, state="draft"), " Editor@Example.org ", render=simple_render
    )
    [(_, rcpts, raw)] = smtp_server.handler.messages
    assert rcpts == ["editor@example.org"]
    assert email.message_from_bytes(raw, policy=policy.default)["Subject"].startswith("[TEST]")
    assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_idn_recipient_is_addressed_in_punycode(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_subscriber(db, config, "jan@bücher.de", consent={"how": "cli"})
    send_issue(db, config, make_issue(db), render=simple_render)
    assert smtp_server.handler.copies_per_recipient() == {"jan@xn--bcher-kva.de": 1}


def test_unreachable_server_is_a_mail_error_naming_it(tmp_path):
    config = load_config(
        write_config(tmp_path, smtp={"host": "127.0.0.1", "port": 9, "timeout": "2s"})
    )
    with (
        pytest.raises(MailError, match=r"127\.0\.0\.1:9.*refused"),
        SmtpSender(config.smtp) as sender,
    ):
        sender.send("a@example.org", b"Subject: x\r\n\r\nx\r\n")


def test_missing_password_variable_is_named(tmp_path, smtp_server, monkeypatch):
    monkeypatch.delenv("TEST_NO_SUCH_PASSWORD", raising=False)
    config, _ = _setup(tmp_path, smtp_server, user="digest", password_env="TEST_NO_SUCH_PASSWORD")
    with pytest.raises(MailError, match="TEST_NO_SUCH_PASSWORD"), SmtpSender(config.smtp) as sender:
        sender.send("a@example.org", b"Subject: x\r\n\r\nx\r\n")


def _tls_files(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def test_starttls_delivers_and_refuses_an_untrusted_certificate(tmp_path):
    cert_path, context = _tls_files(tmp_path)
    server = SmtpServer(RecordingHandler(), tls_context=context, require_starttls=True).start()
    try:
        config, db = _setup(tmp_path, server, security="starttls", ca_file=str(cert_path))
        add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
        assert send_issue(db, config, make_issue(db), render=simple_render).sent == 1
        untrusted = load_config(
            write_config(tmp_path / "other", smtp={**server.smtp_settings, "security": "starttls"})
        )
        with pytest.raises(MailError, match="TLS"), SmtpSender(untrusted.smtp) as sender:
            sender.send("anna@example.org", b"Subject: x\r\n\r\nx\r\n")
    finally:
        server.stop()
    assert server.handler.count() == 1


def test_non_ascii_text_and_names_arrive_intact(tmp_path, smtp_server):
    config, db = _setup(tmp_path, smtp_server)
    add_subscriber(db, config, "zoe@example.org", name="Zoë Παπαδοπούλου", consent={"how": "cli"})

    def render(config, db, issue_id, subscriber=None, *, test=False):
        msg = simple_render(config, db, issue_id, subscriber, test=test)
        msg.subject = "Évros: Ελλάδα — weekly"
        msg.text += "Zürich, Ceuta y Melilla: «pushbacks» 🚤\n"
        msg.html = msg.html.replace("</body>", "<p>Zürich · Ελλάδα</p></body>")
        return msg

    send_issue(db, config, make_issue(db), render=render)
    [msg] = smtp_server.handler.parsed()
    assert msg["Subject"] == "Évros: Ελλάδα — weekly"
    assert msg["To"].addresses[0].display_name == "Zoë Παπαδοπούλου"
    assert "«pushbacks» 🚤" in msg.get_body(("plain",)).get_content()
    assert "Zürich · Ελλάδα" in msg.get_body(("html",)).get_content()


def test_without_8bitmime_the_body_is_quoted_printable(tmp_path, smtp_server):
    config, _ = _setup(tmp_path, smtp_server)
    data = build_message(
        config,
        to_address="a@example.org",
        subject="s",
        text="Zürich\n",
        html="<p>Zürich</p>",
        message_id="<m@example.org>",
    )
    assert data.isascii() and b"quoted-printable" in data
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Zürich\n"


def test_a_one_line_html_page_is_sent_in_short_lines_and_renders_the_same(tmp_path, smtp_server):
    config, _ = _setup(tmp_path, smtp_server)
    html = (
        "<html><body>"
        + "".join(f'<p style="margin: 0 0 8px 0">Story {i} – Ελλάδα</p>' for i in range(300))
        + "</body></html>"
    )
    data = build_message(
        config,
        to_address="a@example.org",
        subject="s",
        text="t",
        html=html,
        message_id="<m@example.org>",
        allow_8bit=True,
    )
    assert max(len(line) for line in data.split(b"\r\n")) < 998
    got = email.message_from_bytes(data, policy=policy.default).get_body(("html",)).get_content()
    assert " ".join(got.split()) == " ".join(html.split())
