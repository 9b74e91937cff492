"""Curators' reviews of an item's tags: stored, applied at once, kept by `monitor retag`, shown by
`monitor tags explain`, and exported as a labelled set for `monitor tags eval`."""

from __future__ import annotations

import json
import subprocess
import sys

from monitor.store import open_db, save_items
from monitor.tagging import process_items
from tests.helpers import DATA


def _run(config_path, *args):
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config_path), *args],
                          capture_output=True, text=True, timeout=300)


def _seed(config):
    """Three real reports of the Melilla fence tragedy (June 2022), tagged at ingest."""
    rows = [json.loads(line) for line in
            (DATA / "labelled" / "clusters.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["story"] == "melilla-tragedy-2022-06-24"][:3]
    items = [{"url": f"http://127.0.0.1/m{i}", "url_keys": [f"127.0.0.1/m{i}"], "source": "news",
              "title": r["title"], "summary": r["lede"], "text": "", "declared_language": "es",
              "published": "2022-06-2%dT10:00:00Z" % (4 + i),
              "fetched_at": "2022-06-28T10:00:00Z", "full_text": 0} for i, r in enumerate(rows)]
    db = open_db(config.storage.database)
    try:
        ids = [i for i, _ in save_items(db, items)]
        process_items(db, config, ids)
    finally:
        db.close()
    return ids


def _stored(config, item_id):
    db = open_db(config.storage.database)
    try:
        relevant = db.execute("SELECT relevant FROM items WHERE id = ?", [item_id]).fetchone()[0]
        tags = {(k, t): json.loads(e) for k, t, e in db.execute(
            "SELECT kind, tag, evidence FROM item_tags WHERE item_id = ?", [item_id])}
        reviews = db.execute("SELECT count(*) FROM tag_reviews").fetchone()[0]
    finally:
        db.close()
    return relevant, tags, reviews


def test_a_review_replaces_the_tags_at_once_and_retag_keeps_it(config, config_path):
    ids = _seed(config)
    relevant, before, _ = _stored(config, ids[0])
    assert relevant == 1 and ("region", "ceuta-melilla") in before
    given_topics = sorted(t for k, t in before if k == "topic")
    assert given_topics, "the tagger gives the Melilla report a topic"

    proc = _run(config_path, "tags", "review", str(ids[0]), "--relevant",
                "--region", "ceuta-melilla", "--topic", "pushbacks", "--topic", "courts",
                "--by", "Ana", "--note", "the trial, not the day itself")
    assert proc.returncode == 0, proc.stderr
    assert "reviewed by Ana" in proc.stdout
    relevant, after, reviews = _stored(config, ids[0])
    assert reviews == 1 and relevant == 1
    assert set(after) == {("region", "ceuta-melilla"), ("region", "western-med"),
                          ("topic", "pushbacks"), ("topic", "courts")}
    # a tag the tagger also found keeps its matched terms, and says who confirmed it
    kept = after[("region", "ceuta-melilla")]
    assert kept[0]["field"] in ("title", "summary") and kept[-1]["reviewer"] == "Ana"
    assert all(ev[-1]["field"] == "review" for ev in after.values())

    # the other reports keep the tagger's answer; a retag does not undo the review
    _, other, _ = _stored(config, ids[1])
    assert ("region", "ceuta-melilla") in other
    proc = _run(config_path, "retag")
    assert proc.returncode == 0, proc.stderr
    assert _stored(config, ids[0])[1].keys() == after.keys()

    explained = _run(config_path, "tags", "explain", str(ids[0])).stdout
    assert "reviewed by Ana at" in explained and "(applies)" in explained
    assert "set by Ana's review of" in explained
    removed = [t for t in given_topics if t not in ("pushbacks", "courts")]
    for topic in removed:
        assert f"not given: topic {topic}" in explained and "removed by Ana's review" in explained
    assert "run `monitor retag`" not in explained  # the review is what the stored tags say

    # a later review wins, the earlier one stays on record; the web pages' facet index sees the
    # change although only an old item's tags were deleted
    from monitor.archive_index import signature

    db = open_db(config.storage.database)
    before_review = signature(db)
    proc = _run(config_path, "tags", "review", str(ids[0]), "--not-relevant", "--by", "Ben")
    assert signature(db) != before_review
    db.close()
    assert proc.returncode == 0, proc.stderr
    relevant, tags, reviews = _stored(config, ids[0])
    assert (relevant, tags, reviews) == (0, {}, 2)
    data = json.loads(_run(config_path, "tags", "explain", "--json", str(ids[0])).stdout)
    assert [r["reviewer"] for r in data["reviews"]] == ["Ben", "Ana"]
    assert data["relevant"] is False and data["stale"] is False


def test_a_bad_review_is_refused_with_a_sentence_and_stores_nothing(config, config_path):
    ids = _seed(config)
    _, before, _ = _stored(config, ids[0])
    cases = [
        (["--relevant", "--region", "atlantis"], "There is no region 'atlantis'"),
        (["--relevant", "--topic", "Pushbacks"], "There is no topic 'Pushbacks'"),
        (["--not-relevant", "--region", "channel"], "not about migration or asylum has no region"),
    ]
    for args, sentence in cases:
        proc = _run(config_path, "tags", "review", str(ids[0]), *args, "--by", "Ana")
        assert proc.returncode == 1, proc.stdout
        assert sentence in proc.stderr and "Traceback" not in proc.stderr
    proc = _run(config_path, "tags", "review", "999999", "--relevant", "--by", "Ana")
    assert proc.returncode == 1 and "no item 999999" in proc.stderr
    proc = _run(config_path, "tags", "review", str(ids[0]), "--relevant", "--by", "  ")
    assert proc.returncode == 1 and "Say who reviewed" in proc.stderr
    relevant, after, reviews = _stored(config, ids[0])
    assert (relevant, after.keys(), reviews) == (1, before.keys(), 0)


def test_reviewed_items_are_a_labelled_set_for_tags_eval(config, config_path, tmp_path):
    ids = _seed(config)
    # the curator says the first report is also about courts (the tagger may not say so) and
    # that the second is not about migration at all (it is): eval then counts both as errors
    assert _run(config_path, "tags", "review", str(ids[0]), "--relevant", "--region",
                "lampedusa", "--topic", "courts", "--by", "Ana").returncode == 0
    assert _run(config_path, "tags", "review", str(ids[1]), "--not-relevant",
                "--by", "Ana").returncode == 0
    proc = _run(config_path, "tags", "reviewed")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["item_id"] for x in lines] == ids[:2]
    assert lines[0]["regions"] == ["lampedusa"] and lines[0]["topics"] == ["courts"]
    assert lines[0]["lang"] == "es" and lines[0]["title"] and lines[1]["relevant"] is False
    labelled = tmp_path / "reviewed.jsonl"
    labelled.write_text(proc.stdout, encoding="utf-8")
    report = json.loads(_run(config_path, "tags", "eval", "--json", str(labelled)).stdout)
    assert report["n"] == 2
    # the stored tags follow the reviews, but eval measures the taxonomy itself: the tagger
    # finds the second report relevant, and never puts the Melilla report on Lampedusa
    assert report["relevance_accuracy"] == 0.5
    assert report["regions"]["per_tag"]["lampedusa"]["fn"] == 1


def test_a_curator_corrects_the_tags_on_the_item_page(web):
    from tests.fixtures_web import csrf_from

    ids = _seed(web.config)
    web.add_user("cora", "curator")
    web.add_user("ana", "analyst")
    curator = web.login("cora")
    page = curator.get(f"/items/{ids[0]}")
    assert page.status_code == 200 and "Correct the tags" in page.text
    # the form starts from the stored answer
    assert 'name="region" value="ceuta-melilla" checked' in page.text
    token = csrf_from(page.text)
    hostile = '<script>alert("x")</script>'
    response = curator.post(f"/items/{ids[0]}/review", data={
        "csrf_token": token, "relevant": "yes", "region": ["channel"], "topic": ["pushbacks"],
        "note": hostile})
    assert response.status_code == 303, response.text
    page = curator.get(f"/items/{ids[0]}")
    assert "Reviewed by cora" in page.text and "Set by cora’s review of" in page.text
    assert hostile not in page.text and "&lt;script&gt;" in page.text
    assert 'name="region" value="channel" checked' in page.text
    assert 'name="region" value="ceuta-melilla" checked' not in page.text
    _, tags, reviews = _stored(web.config, ids[0])
    assert set(tags) == {("region", "channel"), ("topic", "pushbacks")} and reviews == 1

    # a contradicting answer is refused on the page, with the curator's choices kept
    response = curator.post(f"/items/{ids[0]}/review", data={
        "csrf_token": token, "relevant": "yes", "region": ["nowhere"], "note": "typo"})
    assert response.status_code == 400
    assert "There is no region" in response.text and 'value="typo"' in response.text

    # analysts read the tags but may not change them; nor may a form without its token
    analyst = web.login("ana")
    page = analyst.get(f"/items/{ids[0]}")
    assert page.status_code == 200 and "Correct the tags" not in page.text
    assert analyst.post(f"/items/{ids[0]}/review", data={
        "csrf_token": csrf_from(page.text), "relevant": "no"}).status_code == 403
    assert curator.post(f"/items/{ids[0]}/review", data={"relevant": "no"}).status_code == 403
    assert _stored(web.config, ids[0])[2] == 1
