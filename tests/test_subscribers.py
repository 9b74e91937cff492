"""Subscribers: addresses, double opt-in, links, preferences, import, export, erasure, suppression."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest

from monitor import subscribers as subs
from monitor.config import load_config
from monitor.errors import SubscriberError, SubscriberImportError
from monitor.store import open_db
from monitor.tokens import secret_key, secret_key_path
from tests.helpers import write_config

CONSENT = {"how": "web", "text_version": "2026-11", "ip": "192.0.2.7", "user_agent": "Firefox/140"}


@pytest.fixture
def mail_env(tmp_path, smtp_server):
    path = write_config(tmp_path, smtp=smtp_server.smtp_settings)
    config = load_config(path)
    db = open_db(config.storage.database)
    yield config, db, smtp_server
    db.close()


def _token_from(message) -> str:
    body = message.get_body(("plain",)).get_content()
    link = next(w for w in body.split() if "/confirm/" in w)
    return link.rsplit("/confirm/", 1)[1]


# -- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, stored",
    [
        ("  Anna.Berg@Example.ORG ", "anna.berg@example.org"),
        ("anna+digest@example.org", "anna+digest@example.org"),
        ("jan@bücher.de", "jan@bücher.de"),
        ("JAN@BÜCHER.DE", "jan@bücher.de"),
    ],
)
def test_addresses_are_normalised_so_one_person_is_one_row(raw, stored):
    assert subs.normalise_email(raw).email == stored


def test_idn_domain_goes_on_the_envelope_as_punycode():
    assert subs.normalise_email("jan@bücher.de").smtp_address == "jan@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "not-an-address",
        "a@b@c.org",
        "a@example.org, b@example.org",
        "a@example.org\nBcc: victim@example.org",
        "a b@example.org",
        "anna@localhost",
    ],
)
def test_invalid_addresses_are_refused_with_a_sentence(raw):
    with pytest.raises(SubscriberError) as err:
        subs.normalise_email(raw)
    assert str(err.value).endswith(".") or "address" in str(err.value)


@pytest.mark.parametrize(
    "name",
    ["Anna\nBcc: x@example.org", "Anna <evil@example.org>", "Anna, other@example.org", "Anna\x00"],
)
def test_names_cannot_smuggle_headers_or_a_second_address(config, db, name):
    with pytest.raises(SubscriberError, match="name"):
        subs.add_subscriber(db, config, "anna@example.org", name=name, consent={"how": "cli"})
    assert subs.list_subscribers(db) == []


def test_unknown_region_is_refused_naming_the_known_ones(config, db):
    with pytest.raises(SubscriberError, match="central-med"):
        subs.add_subscriber(
            db, config, "a@example.org", regions=["atlantis"], consent={"how": "cli"}
        )


def test_adding_the_same_person_twice_names_the_existing_row(config, db):
    subs.add_subscriber(db, config, "Anna@Example.org", consent={"how": "cli"})
    with pytest.raises(SubscriberError, match="already on the list"):
        subs.add_subscriber(db, config, " anna@example.ORG", consent={"how": "cli"})
    assert len(subs.list_subscribers(db)) == 1


# -- double opt-in --------------------------------------------------------------------------------


def test_web_sign_up_is_pending_until_the_confirmation_link_is_used(mail_env):
    config, db, server = mail_env
    result = subs.subscribe(
        db, config, "Anna@Example.org", "Anna Berg", "ECRE", "en", ["central-med"], [], CONSENT
    )
    assert result.message == subs.SUBSCRIBE_ANSWER
    sub = subs.get_subscriber(db, "anna@example.org")
    assert sub["status"] == "pending"
    assert (
        sub["consent_how"],
        sub["consent_text_version"],
        sub["consent_ip"],
        sub["consent_user_agent"],
    ) == ("web", "2026-11", "192.0.2.7", "Firefox/140")
    [mail] = server.handler.parsed()
    assert mail["To"].addresses[0].addr_spec == "anna@example.org"
    assert "confirm" in mail["Subject"].lower()
    active = subs.confirm(db, config, _token_from(mail))
    assert active["status"] == "active" and active["confirmed_at"]
    assert active["regions"] == ["central-med"]


def test_known_and_unknown_addresses_get_the_same_answer(mail_env):
    config, db, _ = mail_env
    first = subs.subscribe(db, config, "anna@example.org", consent=CONSENT)
    subs.confirm(
        db,
        config,
        subs.confirm_url(config, subs.get_subscriber(db, "anna@example.org")).rsplit("/", 1)[1],
    )
    again = subs.subscribe(db, config, "anna@example.org", consent=CONSENT)
    stranger = subs.subscribe(db, config, "someone@example.org", consent=CONSENT)
    assert first.message == again.message == stranger.message


def test_at_most_one_confirmation_mail_per_address_per_day(mail_env):
    config, db, server = mail_env
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    for minutes in (0, 5, 60 * 23):
        subs.subscribe(
            db, config, "anna@example.org", consent=CONSENT, now=now + timedelta(minutes=minutes)
        )
    assert server.handler.count() == 1
    subs.subscribe(db, config, "ANNA@example.org", consent=CONSENT, now=now + timedelta(hours=25))
    assert server.handler.count() == 2
    assert len(subs.list_subscribers(db)) == 1


def test_active_subscriber_preferences_are_not_changed_by_someone_typing_their_address(mail_env):
    config, db, server = mail_env
    subs.add_subscriber(db, config, "anna@example.org", regions=["channel"], consent={"how": "cli"})
    subs.subscribe(db, config, "anna@example.org", regions=["central-med"], consent=CONSENT)
    assert subs.get_subscriber(db, "anna@example.org")["regions"] == ["channel"]
    assert server.handler.count() == 0


def test_a_tampered_or_wrong_purpose_link_is_refused(mail_env):
    config, db, _ = mail_env
    sub = subs.add_subscriber(
        db, config, "anna@example.org", consent={"how": "cli"}, status="pending"
    )
    token = subs.unsubscribe_url(config, sub).rsplit("/", 1)[1]
    with pytest.raises(SubscriberError, match="not valid"):
        subs.confirm(db, config, token)  # an unsubscribe token is not a confirmation token
    with pytest.raises(SubscriberError, match="not valid"):
        subs.confirm(db, config, token[:-3] + "abc")
    assert subs.get_subscriber(db, "anna@example.org")["status"] == "pending"


def test_smtp_down_keeps_the_sign_up_and_allows_a_retry(tmp_path):
    config = load_config(
        write_config(tmp_path, smtp={"host": "127.0.0.1", "port": 9, "timeout": "2s"})
    )
    db = open_db(config.storage.database)
    from monitor.errors import MailError

    with pytest.raises(MailError, match="127.0.0.1:9"):
        subs.subscribe(db, config, "anna@example.org", consent=CONSENT)
    assert subs.get_subscriber(db, "anna@example.org")["status"] == "pending"
    assert db.execute("SELECT count(*) FROM confirmations").fetchone()[0] == 0


# -- links, unsubscribe, preferences --------------------------------------------------------------


def test_links_use_the_agreed_paths_on_the_web_base_url(config, db):
    sub = subs.add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    base = config.web.base_url
    assert subs.unsubscribe_url(config, sub).startswith(base + "/unsubscribe/")
    assert subs.preferences_url(config, sub).startswith(base + "/preferences/")
    assert subs.confirm_url(config, sub).startswith(base + "/confirm/")


def test_unsubscribe_link_stops_mail_and_records_how(config, db):
    sub = subs.add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    token = subs.unsubscribe_url(config, sub).rsplit("/", 1)[1]
    out = subs.unsubscribe(db, config, token, how="one-click")
    assert (out["status"], out["unsubscribe_how"]) == ("unsubscribed", "one-click")
    assert subs.unsubscribe(db, config, token, how="page")["unsubscribe_how"] == "one-click"


def test_preferences_link_changes_regions_and_topics(config, db):
    sub = subs.add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    token = subs.preferences_url(config, sub).rsplit("/", 1)[1]
    out = subs.update_preferences(
        db, config, token, regions=["balkan-route"], topics="pushbacks; courts"
    )
    assert (out["regions"], out["topics"]) == (["balkan-route"], ["pushbacks", "courts"])


def test_generated_secret_is_private_and_stable(config, monkeypatch):
    monkeypatch.delenv(config.web.secret_env, raising=False)
    key = secret_key(config)
    assert secret_key(config) == key
    assert stat.S_IMODE(secret_key_path(config).stat().st_mode) == 0o600


# -- CSV import -----------------------------------------------------------------------------------


def test_import_with_bad_rows_applies_nothing_and_reports_each(config, db, tmp_path):
    csv_path = tmp_path / "members.csv"
    csv_path.write_text(
        "email,name,organisation,regions\n"
        "anna@example.org,Anna,ECRE,central-med\n"
        "not an address,Bob,,\n"
        "ANNA@example.org,Anna again,,\n"
        'carl@example.org,"Carl <x@evil.org>",,\n'
        "dana@example.org,Dana,,atlantis\n"
        "eve@example.org,Eve,,\n",
        encoding="utf-8",
    )
    with pytest.raises(SubscriberImportError) as err:
        subs.import_csv(db, config, csv_path)
    rows = [row for row, _ in err.value.problems]
    assert rows == [3, 4, 5, 6]
    assert "duplicate of row 2" in str(err.value)
    assert subs.list_subscribers(db) == []


def test_import_skips_known_and_suppressed_addresses(config, db, tmp_path):
    subs.add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    subs.add_subscriber(db, config, "gone@example.org", consent={"how": "cli"})
    subs.erase_subscriber(db, "gone@example.org")
    csv_path = tmp_path / "members.csv"
    csv_path.write_text(
        "email;name;topics\nanna@example.org;Anna;\ngone@example.org;Gone;\n"
        "jan@bücher.de;Jan;pushbacks\n",
        encoding="utf-8",
    )
    report = subs.import_csv(db, config, csv_path, consent_text_version="v3")
    assert report.added == 1
    assert [(r, why.split(" ")[0]) for r, _, why in report.skipped] == [
        (2, "already"),
        (3, "suppressed"),
    ]
    jan = subs.get_subscriber(db, "jan@bücher.de")
    assert (jan["status"], jan["topics"], jan["consent_how"], jan["consent_text_version"]) == (
        "active",
        ["pushbacks"],
        "import:members.csv",
        "v3",
    )


# -- export, erasure, suppression -----------------------------------------------------------------


def test_export_holds_the_consent_record(config, db):
    subs.add_subscriber(
        db, config, "anna@example.org", name="Anna", consent={"how": "cli", "text_version": "v1"}
    )
    data = subs.export_subscriber(db, "ANNA@example.org")
    assert data["subscriber"]["consent_text_version"] == "v1"
    assert "token_key" not in data["subscriber"]
    json.dumps(data)


def test_erasure_deletes_the_data_and_suppresses_the_address(mail_env):
    config, db, server = mail_env
    subs.add_subscriber(db, config, "anna@example.org", name="Anna Berg", consent={"how": "cli"})
    subs.erase_subscriber(db, "anna@example.org")
    assert subs.get_subscriber(db, "anna@example.org") is None
    dump = "\n".join(db.conn.iterdump())
    assert "anna@example.org" not in dump and "Anna Berg" not in dump
    assert subs.is_suppressed(db, "Anna@Example.org") == "erased"
    subs.subscribe(db, config, "anna@example.org", consent=CONSENT)
    assert server.handler.count() == 0
    with pytest.raises(SubscriberError, match="suppression"):
        subs.add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})


def test_links_signed_with_the_configured_secret_stop_working_when_it_changes(config, db,
                                                                              monkeypatch):
    monkeypatch.setenv(config.web.secret_env, "first secret")
    sub = subs.add_subscriber(db, config, "anna@example.org", consent={"how": "cli"})
    token = subs.unsubscribe_url(config, sub).rsplit("/", 1)[1]
    assert not secret_key_path(config).exists()
    monkeypatch.setenv(config.web.secret_env, "another secret")
    with pytest.raises(SubscriberError, match="not valid"):
        subs.unsubscribe(db, config, token)
    monkeypatch.setenv(config.web.secret_env, "first secret")
    assert subs.unsubscribe(db, config, token)["status"] == "unsubscribed"
