"""`monitor retag`, `monitor tags explain` and `monitor tags eval` as a user runs them."""

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
    rows = [json.loads(line) for line in (DATA / "labelled" / "clusters.jsonl").read_text().splitlines()
            if line.strip()]
    rows = [r for r in rows if r["story"] == "melilla-tragedy-2022-06-24"][:3]
    items = [{"url": f"https://news.example/m{i}", "url_keys": [f"news.example/m{i}"], "source": "news",
              "title": r["title"], "summary": r["lede"], "text": "", "declared_language": "es",
              "published": "2022-06-2%dT10:00:00Z" % (4 + i), "fetched_at": "2022-06-28T10:00:00Z",
              "full_text": 0} for i, r in enumerate(rows)]
    db = open_db(config.storage.database)
    try:
        ids = [i for i, _ in save_items(db, items)]
        process_items(db, config, ids)
    finally:
        db.close()
    return ids


def test_explain_shows_each_tag_with_score_evidence_and_cluster(config, config_path):
    ids = _seed(config)
    proc = _run(config_path, "tags", "explain", str(ids[0]))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "relevant (score" in out
    assert "region ceuta-melilla (Ceuta and Melilla): score" in out
    assert "'Melilla' in title" in out
    assert "region western-med" in out
    assert "story cluster" in out


def test_explain_as_json_for_the_web_desk(config, config_path):
    ids = _seed(config)
    data = json.loads(_run(config_path, "tags", "explain", "--json", str(ids[1])).stdout)
    assert data["id"] == ids[1] and data["language"] == "es" and data["relevant"] is True
    tag = next(t for t in data["tags"] if t["tag"] == "ceuta-melilla")
    assert tag["evidence"][0]["field"] in ("title", "summary")
    assert data["cluster"]["representative_id"] in ids


def test_explain_unknown_item_is_a_sentence(config_path):
    proc = _run(config_path, "tags", "explain", "999999")
    assert proc.returncode != 0
    assert "no item 999999" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_prints_per_tag_and_micro_figures(config_path):
    proc = _run(config_path, "tags", "eval", str(DATA / "labelled" / "dev.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "relevance accuracy" in proc.stdout
    assert proc.stdout.count("micro-average") == 2
    assert "lampedusa" in proc.stdout and "pushbacks" in proc.stdout


def test_eval_intervals_bracket_each_headline_figure(config_path):
    # An analyst comparing two taxonomies needs to know how far a figure moves by chance alone.
    path = str(DATA / "labelled" / "test10.jsonl")
    proc = _run(config_path, "tags", "eval", "--json", "--intervals", "300", path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    intervals = report["intervals"]
    for name, point in (("relevance_accuracy", report["relevance_accuracy"]),
                        ("regions_f1", report["regions"]["micro"]["f1"]),
                        ("topics_f1", report["topics"]["micro"]["f1"])):
        lo, hi = intervals[name]
        assert lo < point < hi, name  # 240 items with errors: never a zero-width interval
        assert hi - lo < 0.2, name
    again = json.loads(_run(config_path, "tags", "eval", "--json", "--intervals", "300",
                            path).stdout)
    assert again["intervals"] == intervals  # fixed seed: the same file prints the same interval
    text = _run(config_path, "tags", "eval", "--intervals", "300", path).stdout
    assert text.count("95% interval") == 3 and "resamples" in text


def test_eval_reports_a_broken_file_with_its_line(tmp_path, config_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok", "lang": "en", "relevant": false, "regions": [], "topics": []}\n{nope\n')
    proc = _run(config_path, "tags", "eval", str(bad))
    assert proc.returncode == 1
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr


def test_retag_reports_what_it_did(config, config_path):
    ids = _seed(config)
    proc = _run(config_path, "retag")
    assert proc.returncode == 0, proc.stderr
    assert f"Re-tagged {len(ids)} items" in proc.stdout
    assert "story clusters" in proc.stdout
