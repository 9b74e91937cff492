"""Drafting, curating and the states of a weekly issue, against a real archive file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor import digest
from monitor.digest_select import iso, issue_times, parse_week, sentences, summarise, week_of
from monitor.errors import DigestError
from tests.fixtures_digest import NOW, WEEK, WINDOW_START, corpus_articles, fill_week


def _draft(db, config):
    return digest.draft_issue(db, config, WEEK, now=NOW)


def _view(db, config, issue):
    return digest.issue_view(db, config, issue["id"])


def _entries(view):
    return [e for s in view["sections"] for e in s["entries"]]


def test_week_window_is_the_seven_days_up_to_send_time(digest_config):
    times = issue_times(digest_config, "2026-W49")
    assert times["send_at"] == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # Fri 10:00 Brussels
    assert times["draft_at"] == datetime(2026, 12, 3, 7, 0, tzinfo=UTC)  # Thu 08:00
    assert times["window_start"] == times["send_at"] - timedelta(days=7)
    # Summer time starts on Sunday 29 March 2026: the window still runs Friday 10:00 to 10:00.
    spring = issue_times(digest_config, "2026-W14")
    assert spring["send_at"] == datetime(2026, 4, 3, 8, 0, tzinfo=UTC)
    assert spring["window_start"] == datetime(2026, 3, 27, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("now", "week"), [
    (datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "2026-W49"),  # Monday
    (datetime(2026, 12, 4, 8, 59, tzinfo=UTC), "2026-W49"),   # Friday, a minute before the send
    (datetime(2026, 12, 4, 9, 0, tzinfo=UTC), "2026-W50"),    # the send: new items are next week's
    (datetime(2026, 12, 6, 22, 0, tzinfo=UTC), "2026-W50"),   # Sunday night, still ISO week 49
    (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "2026-W53"),  # New Year's Eve (local: 1 January)
])
def test_the_default_issue_is_the_one_whose_window_holds_now(digest_config, now, week):
    assert week_of(digest_config, now) == week
    times = issue_times(digest_config, week)
    assert times["window_start"] <= now < times["window_end"]


def test_after_the_send_a_draft_without_week_gathers_next_weeks_items(digest_db, digest_config):
    # An item fetched on Friday afternoon, after the 10:00 send, is in no closed issue: drafting
    # "this week" then must not answer that the week is empty.
    after_send = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    digest_db.execute("UPDATE items SET published = NULL, fetched_at = ? WHERE id = "
                      "(SELECT min(id) FROM items WHERE relevant = 1)", [iso(after_send)])
    issue = digest.draft_issue(digest_db, digest_config, now=after_send)
    assert issue["week"] == "2026-W50"
    assert _view(digest_db, digest_config, issue)["story_count"] >= 1


@pytest.mark.parametrize("text", ["2026-49", "W49", "2026-W54", "next week"])
def test_a_bad_week_is_refused_with_a_sentence(text):
    with pytest.raises(DigestError, match="ISO week|has no week"):
        parse_week(text)


def test_draft_has_sections_in_order_within_their_maximum(digest_db, digest_config):
    view = _view(digest_db, digest_config, _draft(digest_db, digest_config))
    assert view["state"] == "draft"
    assert [s["slug"] for s in view["sections"]] == [s.slug for s in digest_config.digest.sections]
    for section, configured in zip(view["sections"], digest_config.digest.sections, strict=True):
        assert 0 < len(section["entries"]) <= configured.max_items
        assert [e["position"] for e in section["entries"]] == list(range(1, len(section["entries"]) + 1))
    # 70 stories, the overflow of full sections waits as candidates.
    assert view["story_count"] + len(view["candidates"]) == 70
    assert view["candidates"]


def test_one_entry_per_cluster_with_also_reported_by(digest_db, digest_config):
    view = _view(digest_db, digest_config, _draft(digest_db, digest_config))
    entries = _entries(view) + view["candidates"]
    assert len({e["story"] for e in entries}) == len(entries)
    clustered = {s["story"]: s["items"] for s in digest_db.stories if len(s["items"]) > 1}
    shown = {e["story"]: e for e in entries}
    for story, items in clustered.items():
        entry = shown[story]
        assert entry["outlets"] == len(items)
        assert len(entry["also"]) == len(items) - 1
        assert {a["item_id"] for a in entry["also"]} | {entry["item_id"]} == set(items)
        assert all(a["url"].startswith("https://") for a in entry["also"])


def test_stories_outside_the_week_or_not_relevant_are_left_out(digest_db, digest_config):
    view = _view(digest_db, digest_config, _draft(digest_db, digest_config))
    shown = {e["item_id"] for e in _entries(view) + view["candidates"]}
    outside = [r["id"] for r in digest_db.query(
        "SELECT id FROM items WHERE url LIKE '%distractor=1' OR url LIKE '%lastweek=1'")]
    assert len(outside) == 2
    assert not shown & set(outside)


def test_ranking_puts_the_most_reported_story_first(digest_db, digest_config):
    view = _view(digest_db, digest_config, _draft(digest_db, digest_config))
    for section in view["sections"]:
        outlets = [e["outlets"] for e in section["entries"]]
        assert outlets == sorted(outlets, reverse=True)


def test_summary_is_two_or_three_sentences_taken_from_the_article(digest_db, digest_config):
    view = _view(digest_db, digest_config, _draft(digest_db, digest_config))
    for entry in _entries(view):
        text = " ".join(digest_db.execute("SELECT text FROM items WHERE id = ?",
                                          [entry["item_id"]]).fetchone()[0].split())
        summary = entry["summary"].removesuffix(" …")
        assert 1 <= len(sentences(summary)) <= 3
        assert summary[:60] in text
        assert len(entry["summary"]) <= 425


def test_sentence_splitting_keeps_abbreviations_and_greek():
    assert sentences("Dr. Smith met Mr. Jones in St. Ives. They talked. Then left.") == [
        "Dr. Smith met Mr. Jones in St. Ives.", "They talked.", "Then left."]
    assert len(sentences("Τι έγινε; Η ακτοφυλακή απάντησε. Όλα καλά.")) == 3
    assert summarise("T", "", "One. Two. Three. Four.") == "One. Two. Three."


def test_an_empty_week_gives_a_clear_message(digest_config, digest_db):
    with pytest.raises(DigestError, match=r"No relevant stories were published for 2026-W40"):
        digest.draft_issue(digest_db, digest_config, "2026-W40", now=NOW)
    assert digest.list_issues(digest_db) == []


def test_edits_are_recorded_and_survive_a_redraft(digest_db, digest_config):
    db, config = digest_db, digest_config
    issue = _draft(db, config)
    view = _view(db, config, issue)
    med = view["sections"][0]["entries"]
    first, second, third = med[0]["story"], med[1]["story"], med[2]["story"]
    candidate = view["candidates"][0]["story"]
    at = NOW + timedelta(minutes=5)
    digest.exclude_story(db, config, issue["id"], first, "anna", now=at)
    digest.set_headline(db, config, issue["id"], second, "anna", "  Coastguard  rescues 40  ", now=at)
    digest.set_summary(db, config, issue["id"], second, "ben", "One sentence.\n\nA second paragraph.")
    digest.move_story(db, config, issue["id"], third, "ben", 1)
    digest.include_story(db, config, issue["id"], candidate, "ben", section="eu-policy")
    digest.set_section(db, config, issue["id"], med[3]["story"], "anna", "channel")
    digest.set_intro(db, config, issue["id"], "anna", "Dear members,\r\n\r\nthis week...")

    def check(view):
        med_now = view["sections"][0]["entries"]
        assert first not in [e["story"] for e in _entries(view)]
        assert med_now[0]["story"] == third
        edited = next(e for e in med_now if e["story"] == second)
        assert edited["headline"] == "Coastguard rescues 40"
        assert edited["summary"] == "One sentence.\n\nA second paragraph."
        assert edited["original_headline"] != edited["headline"]
        eu = next(s for s in view["sections"] if s["slug"] == "eu-policy")["entries"]
        assert eu[-1]["story"] == candidate
        channel = next(s for s in view["sections"] if s["slug"] == "channel")["entries"]
        assert channel[-1]["story"] == med[3]["story"]
        assert view["intro"] == "Dear members,\n\nthis week..."

    check(_view(db, config, issue))
    # New stories arrive; the re-draft picks them up and keeps every edit.
    more = fill_week(db, config, stories=3, clustered_every=0, start=NOW - timedelta(hours=2),
                     tags=[("central-med", "arrivals")])
    redrafted = digest.draft_issue(db, config, WEEK, now=NOW + timedelta(hours=1), by="ben")
    assert redrafted["revision"] > issue["revision"]
    view = _view(db, config, redrafted)
    check(view)
    stories = {e["story"] for e in _entries(view) + view["candidates"]}
    assert len(stories) == 74  # 3 new stories, and that batch's "week before" item falls in W49
    assert {m["story"] for m in more} <= stories

    history = digest.edit_history(db, issue["id"])
    assert [h["action"] for h in history] == ["exclude", "headline", "summary", "move", "include",
                                              "section", "intro"]
    assert history[0]["by"] == "anna" and history[0]["at"] == "2026-12-02T12:05:00Z"
    assert history[0]["story"] == first


def test_bad_edits_are_refused_with_a_sentence(digest_db, digest_config):
    db, config = digest_db, digest_config
    issue = _draft(db, config)
    story = _entries(_view(db, config, issue))[0]["story"]
    with pytest.raises(DigestError, match="'nowhere' is not a digest section"):
        digest.set_section(db, config, issue["id"], story, "anna", "nowhere")
    with pytest.raises(DigestError, match="headline of story .* is empty"):
        digest.set_headline(db, config, issue["id"], story, "anna", "   ")
    with pytest.raises(DigestError, match="no story #999999"):
        digest.include_story(db, config, issue["id"], 999999, "anna")
    with pytest.raises(DigestError, match="who is editing"):
        digest.exclude_story(db, config, issue["id"], story, "")
    assert digest.edit_history(db, issue["id"]) == []


def test_late_approval_needs_confirmation_and_closes_edits(digest_db, digest_config):
    db, config = digest_db, digest_config
    issue = _draft(db, config)
    late = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    with pytest.raises(DigestError, match="send time .* has passed"):
        digest.approve_issue(db, config, issue["id"], "anna", now=late)
    assert digest.get_issue(db, issue["id"])["state"] == "draft"
    approved = digest.approve_issue(db, config, issue["id"], "anna", now=late, confirm_late=True)
    assert approved["state"] == "approved" and approved["approved_late"] == 1
    assert approved["approved_by"] == "anna"
    with pytest.raises(DigestError, match="edits are closed"):
        digest.set_intro(db, config, issue["id"], "anna", "Too late")
    with pytest.raises(DigestError, match="can no longer be re-drafted"):
        digest.draft_issue(db, config, WEEK, now=late)
    with pytest.raises(DigestError, match="already approved"):
        digest.approve_issue(db, config, issue["id"], "anna", now=late, confirm_late=True)


def test_scheduler_drafts_at_draft_time_and_does_not_send_an_unapproved_issue(digest_db, digest_config):
    db, config = digest_db, digest_config
    before = datetime(2026, 12, 3, 6, 55, tzinfo=UTC)
    assert digest.run_due_jobs(db, config, before) == []
    messages = digest.run_due_jobs(db, config, datetime(2026, 12, 3, 7, 1, tzinfo=UTC))
    assert messages and messages[0].startswith("Drafted the digest 2026-W49 with ")
    assert digest.run_due_jobs(db, config, datetime(2026, 12, 3, 7, 6, tzinfo=UTC)) == []
    send_time = datetime(2026, 12, 4, 9, 1, tzinfo=UTC)
    messages = digest.run_due_jobs(db, config, send_time)
    assert messages == ["The digest 2026-W49 was not approved by its send time (2026-12-04T09:00:00Z) "
                        "and was not sent; approve it to send it late."]
    assert digest.find_issue(db, WEEK)["state"] == "draft"
    assert digest.run_due_jobs(db, config, send_time + timedelta(minutes=5)) == []  # said once


def test_scheduler_reports_an_empty_week(digest_config, db):
    messages = digest.run_due_jobs(db, digest_config, datetime(2026, 12, 3, 7, 1, tzinfo=UTC))
    assert len(messages) == 1 and "nothing to draft" in messages[0]


def test_candidates_carry_tags_evidence_and_filters(digest_db, digest_config):
    db, config = digest_db, digest_config
    issue = _draft(db, config)
    stories = digest.week_candidates(db, config, issue["id"])
    assert len(stories) == 70
    assert all(s["tags"] and "evidence" in s["tags"][0] for s in stories)
    channel = digest.week_candidates(db, config, issue["id"], region="channel")
    assert channel and all("channel" in s["regions"] for s in channel)
    german = digest.week_candidates(db, config, issue["id"], language="de")
    assert german and all(s["language"] == "de" for s in german)
    assert sum(s["in_issue"] for s in stories) == _view(db, config, issue)["story_count"]


def test_fixture_is_real_corpus_text():
    articles = corpus_articles()
    assert len(articles) >= 60
    assert all(len(a["body"]) >= 300 and a["url"].startswith("https://") for a in articles)
    assert WINDOW_START < NOW


def test_scheduler_sends_an_approved_issue_once_at_its_time(tmp_path, smtp_server):
    from monitor.store import open_db
    from monitor.subscribers import add_subscriber
    from tests.fixtures_digest import write_digest_config

    config = write_digest_config(tmp_path, smtp=smtp_server.smtp_settings)
    db = open_db(config.storage.database)
    fill_week(db, config, stories=12)
    for n in range(5):
        add_subscriber(db, config, f"m{n}@ngo.example", consent={"how": "cli"})
    digest.run_due_jobs(db, config, datetime(2026, 12, 3, 7, 1, tzinfo=UTC))
    issue = digest.find_issue(db, WEEK)
    digest.approve_issue(db, config, issue["id"], "anna", now=datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    assert digest.run_due_jobs(db, config, datetime(2026, 12, 4, 8, 59, tzinfo=UTC)) == []
    assert smtp_server.handler.count() == 0
    messages = digest.run_due_jobs(db, config, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    assert len(messages) == 1 and messages[0].startswith("Sent the digest 2026-W49: ")
    assert digest.find_issue(db, WEEK)["state"] == "sent"
    assert digest.run_due_jobs(db, config, datetime(2026, 12, 4, 9, 5, tzinfo=UTC)) == []
    assert sorted(smtp_server.handler.copies_per_recipient().values()) == [1] * 5
    db.close()


def test_scheduler_keeps_an_approved_issue_when_the_smtp_server_is_down(tmp_path):
    import socket

    from monitor.store import open_db
    from monitor.subscribers import add_subscriber
    from tests.fixtures_digest import write_digest_config

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_digest_config(tmp_path, smtp={"host": "127.0.0.1", "port": port, "security": "none",
                                                 "timeout": "2s"})
    db = open_db(config.storage.database)
    fill_week(db, config, stories=6)
    add_subscriber(db, config, "m@ngo.example", consent={"how": "cli"})
    issue = digest.draft_issue(db, config, WEEK, now=NOW)
    digest.approve_issue(db, config, issue["id"], "anna", now=NOW)
    messages = digest.run_due_jobs(db, config, datetime(2026, 12, 4, 9, 1, tzinfo=UTC))
    assert len(messages) == 1 and messages[0].startswith("The digest 2026-W49 could not be sent now: ")
    assert digest.find_issue(db, WEEK)["state"] in ("approved", "sending")
    db.close()


def test_a_draft_time_after_the_send_time_is_refused_at_start(tmp_path):
    from monitor.errors import ConfigError
    from tests.fixtures_digest import write_digest_config

    with pytest.raises(ConfigError, match=r"digest.draft_day: the draft must come before the send time"):
        write_digest_config(tmp_path, draft_day="friday", draft_time="11:00")
