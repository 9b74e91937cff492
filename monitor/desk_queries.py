"""Small reads and one edit helper the web desk needs on top of monitor.digest and monitor.tagging.

Plain functions on (db, config, ...) in the style of monitor.digest; every change still goes
through monitor.digest's recorded edits. Nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from monitor import digest
from monitor.errors import DigestError

# The consent text shown on the subscribe page; its version is recorded with every web sign-up.
# The version is derived from the text, so changing the wording always changes the version.
CONSENT_TEXT = (
    "I agree to receive the weekly digest by email. My address, name, organisation and choices "
    "are used only to send it and are never shared. Every mail has a link to unsubscribe or "
    "change what I receive, and I can ask for my data to be exported or erased at any time."
)
CONSENT_VERSION = "web-" + hashlib.sha256(CONSENT_TEXT.encode("utf-8")).hexdigest()[:10]


def labels(config) -> dict[str, dict[str, str]]:
    """Display labels of the taxonomy's regions and topics, by slug."""
    taxonomy = config.taxonomy
    return {"region": {slug: c.label for slug, c in taxonomy.regions.items()},
            "topic": {slug: c.label for slug, c in taxonomy.topics.items()}}


def position_of(db: Any, config, issue_id: int, story: int) -> tuple[str, int, int]:
    """(section slug, 1-based position, count of included stories in that section) of a story."""
    for section in digest.issue_view(db, config, issue_id)["sections"]:
        for number, entry in enumerate(section["entries"], start=1):
            if entry["story"] == story:
                return section["slug"], number, len(section["entries"])
    raise DigestError(f"Story #{story} is not included in this issue; include it before moving it.")


def move_by(db: Any, config, issue_id: int, story: int, by: str, delta: int) -> dict:
    """Move an included story `delta` places up (negative) or down within its section; a move past
    either end leaves it where it is (no edit is recorded)."""
    _, position, count = position_of(db, config, issue_id, story)
    target = min(max(1, position + delta), count)
    if target == position:
        return digest.get_issue(db, issue_id)
    return digest.move_story(db, config, issue_id, story, by, target)


def describe_evidence(evidence: Any) -> str:
    """One line saying why a tag was given, for the tagging's stored evidence in either shape:
    a list of matches ({term, field, ...}) or {terms: [...], where: ...}."""
    if isinstance(evidence, list):
        parts = []
        for match in evidence[:6]:
            if isinstance(match, dict) and match.get("term"):
                where = match.get("field")
                parts.append(f"“{match['term']}” in {where}" if where else f"“{match['term']}”")
        more = len(evidence) - 6
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    if isinstance(evidence, dict):
        terms = evidence.get("terms") or ([evidence["term"]] if evidence.get("term") else [])
        where = evidence.get("where") or evidence.get("field")
        if terms:
            quoted = ", ".join(f"“{t}”" for t in terms[:6])
            return f"{quoted} in {where}" if where else quoted
        return ""
    return str(evidence or "")


def archive_issues(db: Any, limit: int = 100) -> list[dict]:
    """Sent issues for the public archive, newest first."""
    return digest.list_issues(db, states=("sent",), limit=limit)


def archived_issue(db: Any, week: str) -> dict | None:
    """The issue of `week` if it was sent (drafts and approved issues are not public)."""
    issue = digest.find_issue(db, week)
    return issue if issue and issue["state"] == "sent" else None


# The week's candidates are recomputed from the archive (summaries included), which takes long
# enough (~0.2 s for 60 stories) to dominate the desk page. They are kept briefly per issue
# revision and newest item, so an edit or a newly stored article is seen at once; a retag is
# seen within CANDIDATE_SECONDS.
CANDIDATE_SECONDS = 60.0
_candidates: dict[tuple, tuple[float, list[dict]]] = {}
_candidates_lock = threading.Lock()


def week_candidates(db: Any, config, issue_id: int, *, region: str | None = None,
                    topic: str | None = None, language: str | None = None) -> list[dict]:
    """digest.week_candidates, cached briefly (see CANDIDATE_SECONDS); do not change the result."""
    revision = db.execute("SELECT revision FROM digests WHERE id = ?", [issue_id]).fetchone()
    newest = db.execute("SELECT max(id) FROM items").fetchone()[0]
    key = (str(config.storage.database), issue_id, revision[0] if revision else None, newest,
           region, topic, language)
    now = time.monotonic()
    with _candidates_lock:
        hit = _candidates.get(key)
        if hit and hit[0] > now:
            return hit[1]
    found = digest.week_candidates(db, config, issue_id, region=region, topic=topic,
                                   language=language)
    with _candidates_lock:
        if len(_candidates) > 200:
            _candidates.clear()
        _candidates[key] = (now + CANDIDATE_SECONDS, found)
    return found
