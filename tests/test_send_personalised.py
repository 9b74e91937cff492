"""A real issue sent through the outbox: each member's own links and sections, in mail that a
mailbox provider accepts (the body of each variant is encoded once and filled in per member)."""

from __future__ import annotations

import re

from monitor import digest
from monitor.outbox import send_issue
from monitor.render import Variant, render_issue
from monitor.subscribers import get_subscriber, subscriber_from_token
from tests.fixtures_digest import NOW, WEEK, fill_week, write_digest_config
from tests.fixtures_mail import add_active

LINK = re.compile(r"https?://\S+?/(unsubscribe|preferences)/([A-Za-z0-9_.\-]+)")


def _approved_issue(tmp_path, server, **web):
    from monitor.config import load_config
    from monitor.store import open_db
    from tests.fixtures_digest import corpus_sources
    from tests.helpers import write_config

    if web:
        config = load_config(
            write_config(tmp_path, sources=corpus_sources(), smtp=server.smtp_settings, web=web)
        )
    else:
        config = write_digest_config(tmp_path, smtp=server.smtp_settings)
    db = open_db(config.storage.database)
    fill_week(db, config, 40)
    issue = digest.draft_issue(db, config, WEEK, now=NOW)["id"]
    db.execute("UPDATE digests SET state = 'approved' WHERE id = ?", [issue])
    return config, db, issue


def _links(text: str) -> dict[str, str]:
    """purpose -> the one link of that purpose in a part (every occurrence the same)."""
    found: dict[str, set[str]] = {}
    for match in LINK.finditer(text):
        found.setdefault(match.group(1), set()).add(match.group(0))
    assert all(len(urls) == 1 for urls in found.values()), found
    return {purpose: urls.pop() for purpose, urls in found.items()}


def _check_mail(config, db, issue, msg) -> None:
    to = msg["To"].addresses[0].addr_spec
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    links = _links(text)
    assert set(links) == {"unsubscribe", "preferences"}
    assert _links(html) == links  # the same links in both parts
    for purpose, url in links.items():
        token = url.rsplit("/", 1)[1]
        assert subscriber_from_token(db, config, token, purpose)["email"] == to
    assert msg["List-Unsubscribe"].split(",")[0].strip(" <>") == links["unsubscribe"]
    # Exactly what the renderer gives this member with these links (the preview's content).
    subscriber = get_subscriber(db, to)
    expected = render_issue(
        config,
        db,
        issue,
        subscriber,
        unsubscribe_url=links["unsubscribe"],
        preferences_url=links["preferences"],
    )
    assert text == expected.text
    assert html.split() == expected.html.split()  # long HTML lines break at existing spaces
    assert not any(mark in text or mark in html for mark in Variant.placeholders)


def test_every_member_gets_their_own_links_and_sections(tmp_path, smtp_server):
    config, db, issue = _approved_issue(tmp_path, smtp_server)
    add_active(db, config, 3, prefix="med-", regions=["central-med"])
    add_active(db, config, 2, prefix="channel-", regions=["channel"])
    add_active(db, config, 2, prefix="all-")
    stats = send_issue(db, config, issue)
    assert (stats.sent, stats.remaining) == (7, 0)
    messages = smtp_server.handler.parsed()
    assert len(messages) == 7
    for msg in messages:
        _check_mail(config, db, issue, msg)
    raws = [raw for _, _, raw in smtp_server.handler.messages]
    assert all(len(line) <= 998 for raw in raws for line in raw.split(b"\r\n"))
    sizes = {
        msg["To"].addresses[0].addr_spec.split("-")[0]: len(msg.get_body(("plain",)).get_content())
        for msg in messages
    }
    # A member with one region gets fewer stories than one who wants everything.
    assert sizes["med"] < sizes["all"] and sizes["channel"] < sizes["all"]


def test_long_links_arrive_whole_in_lines_a_server_accepts(tmp_path, smtp_server):
    # Two ~600-character links do not fit on the HTML line that holds them: that member's mail
    # is built from the filled-in text instead (a header line cannot hold a link over 998).
    long_base = "https://members.example.org/" + "/".join(["coalition-member-area"] * 22)
    config, db, issue = _approved_issue(tmp_path, smtp_server, base_url=long_base)
    add_active(db, config, 2, prefix="med-", regions=["central-med"])
    stats = send_issue(db, config, issue)
    assert stats.sent == 2
    for msg in smtp_server.handler.parsed():
        _check_mail(config, db, issue, msg)
        assert len(_links(msg.get_body(("plain",)).get_content())["unsubscribe"]) > 500
    raws = [raw for _, _, raw in smtp_server.handler.messages]
    assert all(len(line) <= 998 for raw in raws for line in raw.split(b"\r\n"))


def test_dkim_signed_issue_mail_verifies_and_a_changed_link_does_not(tmp_path, smtp_server):
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name, timeout=5):
        return record if name == b"news2026._domainkey.example.org." else None

    from monitor.config import load_config
    from monitor.store import open_db
    from tests.fixtures_digest import corpus_sources
    from tests.helpers import write_config

    smtp = {
        **smtp_server.smtp_settings,
        "dkim_key_file": str(key_file),
        "dkim_selector": "news2026",
        "dkim_domain": "example.org",
    }
    config = load_config(write_config(tmp_path, sources=corpus_sources(), smtp=smtp))
    db = open_db(config.storage.database)
    fill_week(db, config, 20)
    issue = digest.draft_issue(db, config, WEEK, now=NOW)["id"]
    db.execute("UPDATE digests SET state = 'approved' WHERE id = ?", [issue])
    add_active(db, config, 2, prefix="med-", regions=["central-med"])
    add_active(db, config, 1, prefix="all-")
    assert send_issue(db, config, issue).sent == 3
    raws = [raw for _, _, raw in smtp_server.handler.messages]
    for raw in raws:
        assert dkim.verify(raw, dnsfunc=dns)
        # A changed link (in the header and the body) breaks the signature.
        mine = LINK.search(raw.decode("utf-8")).group(2).encode("ascii")
        assert not dkim.verify(raw.replace(mine, mine[::-1]), dnsfunc=dns)
