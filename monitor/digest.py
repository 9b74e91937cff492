"""Weekly issues of the digest: drafting, curator edits (recorded and replayed), states, the scheduler hook.

Plain functions taking (db, config, ...) and returning plain dicts, shared by the CLI and the web desk.
Which stories a week proposes is decided in monitor.digest_select; rendering is monitor.render.

States: draft -> approved -> sending -> sent. Every curator action is a row in digest_edits; a
re-draft rebuilds the proposal from the archive and replays those rows, so edits survive it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.config import Config
from monitor.digest_select import (
    entry_from_story,
    issue_times,
    iso,
    parse_iso,
    parse_week,
    proposal,
    section_for,
    story_by_key,
    week_of,
    week_stories,
)
from monitor.errors import DigestError, MonitorError
from monitor.store import transaction
from monitor.urls import safe_url

log = logging.getLogger(__name__)

STATES = ("draft", "approved", "sending", "sent")
TRANSITIONS = {"approved": ("draft",), "sending": ("approved", "sending"), "sent": ("sending", "approved"),
               "draft": ("approved",)}
EDIT_ACTIONS = ("include", "exclude", "move", "section", "headline", "summary", "intro", "add")
MAX_HEADLINE = 300
MAX_SUMMARY = 2000


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


# -- issues -------------------------------------------------------------------------------------

def find_issue(db: Any, week: str) -> dict | None:
    rows = list(db.query("SELECT * FROM digests WHERE week = ?", [parse_week(week)]))
    return rows[0] if rows else None


def get_issue(db: Any, issue_id: int) -> dict:
    rows = list(db.query("SELECT * FROM digests WHERE id = ?", [issue_id]))
    if not rows:
        raise DigestError(f"There is no digest issue with id {issue_id}.")
    return rows[0]


def issue_for_week(db: Any, config: Config, week: str | None = None, now: datetime | None = None) -> dict:
    """The issue of `week` (default: the current week); DigestError if it was never drafted."""
    week = parse_week(week) if week else week_of(config, _now(now))
    issue = find_issue(db, week)
    if issue is None:
        raise DigestError(f"There is no digest issue for {week} yet: run `monitor digest draft --week {week}`.")
    return issue


def list_issues(db: Any, states: Sequence[str] = (), limit: int = 100) -> list[dict]:
    """Issues newest first; the public archive asks for states=('sent',)."""
    where, params = "", []
    if states:
        where = f"WHERE state IN ({','.join('?' * len(states))})"
        params = list(states)
    return list(db.query(f"SELECT * FROM digests {where} ORDER BY week DESC LIMIT ?", [*params, limit]))


def draft_issue(db: Any, config: Config, week: str | None = None, *, now: datetime | None = None,
                by: str = "scheduler") -> dict:
    """Create or re-draft the issue of `week` from the archive, replaying the curator's edits.

    Refused once the issue is approved. An empty week raises DigestError with the window.
    """
    now = _now(now)
    week = parse_week(week) if week else week_of(config, now)
    if not config.digest.sections:
        raise DigestError(f"{config.path}: no [[digest.sections]] are configured, so a digest has "
                          "nowhere to put its stories.")
    times = issue_times(config, week)
    stories = week_stories(db, config, times["window_start"], times["window_end"])
    existing = find_issue(db, week)
    if existing and existing["state"] != "draft":
        raise DigestError(f"The issue {week} is {existing['state']}; it can no longer be re-drafted.")
    if not stories and not (existing and _edits(db, existing["id"])):
        raise DigestError(
            f"No relevant stories were published for {week} (between {_local(config, times['window_start'])} "
            f"and {_local(config, times['window_end'])}, {config.digest.timezone}); there is nothing to "
            "draft. Crawl first, or choose another week with --week.")
    entries = proposal(config, stories)
    with transaction(db):
        if existing is None:
            cursor = db.execute(
                """INSERT INTO digests (week, state, title, intro, window_start, window_end, draft_at,
                   send_at, created_at, drafted_at, updated_at)
                   VALUES (?, 'draft', ?, '', ?, ?, ?, ?, ?, ?, ?)""",
                [week, config.digest.title, iso(times["window_start"]), iso(times["window_end"]),
                 iso(times["draft_at"]), iso(times["send_at"]), iso(now), iso(now), iso(now)])
            issue_id = cursor.lastrowid
        else:
            issue_id = existing["id"]
            for edit in _edits(db, issue_id):
                try:
                    entries = apply_edit(db, config, entries, edit)
                except DigestError as exc:
                    # The archive changed under an old edit (a story retagged away): skip it, say so.
                    log.info("digest %s: edit %s no longer applies: %s", week, edit["id"], exc)
            db.execute(
                """UPDATE digests SET window_start = ?, window_end = ?, draft_at = ?, send_at = ?,
                   drafted_at = ?, updated_at = ?, revision = revision + 1 WHERE id = ?""",
                [iso(times["window_start"]), iso(times["window_end"]), iso(times["draft_at"]),
                 iso(times["send_at"]), iso(now), iso(now), issue_id])
        _save_entries(db, config, issue_id, entries)
    log.info("digest %s drafted by %s: %d stories", week, by, sum(e["included"] for e in entries))
    return get_issue(db, issue_id)


def _local(config: Config, moment: datetime) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(config.digest.timezone)).strftime("%a %d %b %Y %H:%M")


def _save_entries(db: Any, config: Config, issue_id: int, entries: list[dict]) -> None:
    db.execute("DELETE FROM digest_entries WHERE digest_id = ?", [issue_id])
    known = {s.slug for s in config.digest.sections}
    positions: dict[str, int] = {}
    for entry in _ordered(entries):
        if entry["section"] not in known:
            continue
        positions[entry["section"]] = positions.get(entry["section"], 0) + 1
        db.execute(
            """INSERT INTO digest_entries (digest_id, story, item_id, section, position, included,
               headline, summary, score, outlets, manual, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
            [issue_id, entry["story"], entry["item_id"], entry["section"], positions[entry["section"]],
             int(entry["included"]), entry["headline"], entry["summary"], entry["score"],
             entry["outlets"], int(entry["manual"]), json.dumps(entry["data"], ensure_ascii=False)])


def _ordered(entries: list[dict]) -> list[dict]:
    """Within a section, included entries first (in their order), then the other candidates."""
    return sorted(entries, key=lambda e: not e["included"])


def load_entries(db: Any, issue_id: int) -> list[dict]:
    rows = list(db.query(
        "SELECT * FROM digest_entries WHERE digest_id = ? ORDER BY section, position", [issue_id]))
    for row in rows:
        row["included"] = bool(row["included"])
        row["manual"] = bool(row["manual"])
        row["data"] = json.loads(row["data"])
    return rows


# -- edits --------------------------------------------------------------------------------------

def _edits(db: Any, issue_id: int) -> list[dict]:
    rows = list(db.query("SELECT * FROM digest_edits WHERE digest_id = ? ORDER BY id", [issue_id]))
    for row in rows:
        row["value"] = json.loads(row["value"])
    return rows


def edit_history(db: Any, issue_id: int) -> list[dict]:
    """Every recorded action on the issue, oldest first: at, by, action, story, value."""
    return [{k: row[k] for k in ("id", "at", "by", "action", "story", "value")}
            for row in _edits(db, issue_id)]


def apply_edit(db: Any, config: Config, entries: list[dict], edit: dict) -> list[dict]:
    """The entries after one edit ({action, story, value}); DigestError when it cannot apply."""
    action, story, value = edit["action"], edit.get("story"), edit.get("value") or {}
    sections = {s.slug for s in config.digest.sections}
    entries = [dict(e) for e in entries]
    index = next((i for i, e in enumerate(entries) if e["story"] == story), None)
    target = value.get("section")
    if target is not None and target not in sections:
        raise DigestError(f"'{target}' is not a digest section (sections: {', '.join(sorted(sections))}).")
    if action in ("include", "move", "section", "add"):
        if index is None:
            found = story_by_key(db, config, story)
            if found is None:
                raise DigestError(f"There is no story #{story} in the archive.")
            slug = target or section_for(found, config.digest.sections) or config.digest.sections[0].slug
            entries.append(entry_from_story(found, slug, included=True, manual=True))
            index = len(entries) - 1
        entry = entries.pop(index)
        entry["included"] = True
        entry["manual"] = entry["manual"] or action != "include"
        moved = target is not None and target != entry["section"]
        if target:
            entry["section"] = target
        same = [i for i, e in enumerate(entries) if e["section"] == entry["section"] and e["included"]]
        if action == "move" and value.get("position"):
            position = max(1, int(value["position"]))
            at = same[position - 1] if position <= len(same) else (same[-1] + 1 if same else len(entries))
        elif index is not None and not moved and action == "include" and not edit.get("_new"):
            at = min(index, len(entries))
        else:
            at = same[-1] + 1 if same else _section_start(config, entries, entry["section"])
        entries.insert(at, entry)
        return entries
    if action == "intro":
        return entries
    if index is None:
        raise DigestError(f"Story #{story} is not in this issue; `monitor digest show` lists the stories.")
    entry = entries[index]
    if action == "exclude":
        entry["included"] = False
    elif action in ("headline", "summary"):
        text = " ".join(str(value.get("text") or "").split()) if action == "headline" else \
            paragraphs(value.get("text"))
        if not text:
            raise DigestError(f"The new {action} of story #{story} is empty.")
        limit = MAX_HEADLINE if action == "headline" else MAX_SUMMARY
        if len(text) > limit:
            raise DigestError(f"The new {action} of story #{story} is {len(text)} characters; "
                              f"at most {limit} fit.")
        entry[action] = text
    else:
        raise DigestError(f"'{action}' is not a digest edit ({', '.join(EDIT_ACTIONS)}).")
    return entries


def paragraphs(text: object) -> str:
    """Curator text: newlines normalised, paragraphs separated by one blank line, spaces collapsed."""
    value = str(text or "").replace("\r\n", "\n").replace("\r", "\n")
    parts = (" ".join(p.split()) for p in re.split(r"\n\s*\n", value))
    return "\n\n".join(p for p in parts if p)


def _section_start(config: Config, entries: list[dict], slug: str) -> int:
    order = [s.slug for s in config.digest.sections]
    rank = order.index(slug)
    for i, e in enumerate(entries):
        if e["section"] in order and order.index(e["section"]) > rank:
            return i
    return len(entries)


def edit_issue(db: Any, config: Config, issue_id: int, by: str, action: str, story: int | None = None,
               now: datetime | None = None, **value: Any) -> dict:
    """Apply one curator action to a draft and record it (who, when, what); returns the issue."""
    if action not in EDIT_ACTIONS:
        raise DigestError(f"'{action}' is not a digest edit ({', '.join(EDIT_ACTIONS)}).")
    by = (by or "").strip()
    if not by:
        raise DigestError("Say who is editing (--by NAME).")
    now = _now(now)
    issue = get_issue(db, issue_id)
    if issue["state"] != "draft":
        raise DigestError(f"The issue {issue['week']} is {issue['state']}; edits are closed.")
    value = {k: v for k, v in value.items() if v is not None}
    with transaction(db):
        if action == "intro":
            text = paragraphs(value.get("text"))
            value = {"text": text}
            db.execute("UPDATE digests SET intro = ? WHERE id = ?", [text, issue_id])
        else:
            entries = apply_edit(db, config, load_entries(db, issue_id),
                                 {"action": action, "story": story, "value": value})
            _save_entries(db, config, issue_id, entries)
        db.execute("INSERT INTO digest_edits (digest_id, at, by, action, story, value) VALUES (?,?,?,?,?,?)",
                   [issue_id, iso(now), by, action, story, json.dumps(value, ensure_ascii=False)])
        db.execute("UPDATE digests SET updated_at = ?, revision = revision + 1 WHERE id = ?",
                   [iso(now), issue_id])
    return get_issue(db, issue_id)


def include_story(db, config, issue_id, story, by, section=None, now=None):
    return edit_issue(db, config, issue_id, by, "include", story, now, section=section)


def exclude_story(db, config, issue_id, story, by, now=None):
    return edit_issue(db, config, issue_id, by, "exclude", story, now)


def move_story(db, config, issue_id, story, by, position, section=None, now=None):
    return edit_issue(db, config, issue_id, by, "move", story, now, position=int(position), section=section)


def set_section(db, config, issue_id, story, by, section, now=None):
    return edit_issue(db, config, issue_id, by, "section", story, now, section=section)


def set_headline(db, config, issue_id, story, by, text, now=None):
    return edit_issue(db, config, issue_id, by, "headline", story, now, text=text)


def set_summary(db, config, issue_id, story, by, text, now=None):
    return edit_issue(db, config, issue_id, by, "summary", story, now, text=text)


def set_intro(db, config, issue_id, by, text, now=None):
    return edit_issue(db, config, issue_id, by, "intro", None, now, text=text)


def add_url(db: Any, config: Config, issue_id: int, url: str, by: str, section: str | None = None,
            now: datetime | None = None) -> dict:
    """Fetch and extract an article (through the crawler) and include its story in the issue."""
    if safe_url(url) is None:
        raise DigestError(f"'{url}' is not an http:// or https:// address.")
    issue = get_issue(db, issue_id)
    if issue["state"] != "draft":
        raise DigestError(f"The issue {issue['week']} is {issue['state']}; edits are closed.")
    from monitor.crawl import fetch_one

    item_id = fetch_one(config, db, url)
    row = db.execute("SELECT coalesce(cluster_id, id) FROM items WHERE id = ?", [item_id]).fetchone()
    return edit_issue(db, config, issue_id, by, "add", row[0], now, section=section, url=url,
                      item_id=item_id)


# -- reading ------------------------------------------------------------------------------------

def issue_view(db: Any, config: Config, issue_id: int) -> dict:
    """The issue as data: its row, and its sections in config order with included entries in order;
    `candidates` holds the entries placed in a section but not included."""
    issue = get_issue(db, issue_id)
    entries = load_entries(db, issue_id)
    sections = []
    candidates = []
    for section in config.digest.sections:
        mine = [e for e in entries if e["section"] == section.slug]
        sections.append({"slug": section.slug, "title": section.title, "regions": list(section.regions),
                         "topics": list(section.topics), "max": section.max_items,
                         "entries": [_flat(e) for e in mine if e["included"]]})
        candidates.extend(_flat(e) for e in mine if not e["included"])
    issue["sections"] = sections
    issue["candidates"] = candidates
    issue["story_count"] = sum(len(s["entries"]) for s in sections)
    issue["late"] = issue["state"] == "draft" and parse_iso(issue["send_at"]) <= _now(None)
    return issue


def _flat(entry: dict) -> dict:
    flat = {k: v for k, v in entry.items() if k not in ("data", "digest_id")}
    flat.update({k: v for k, v in entry["data"].items() if k not in ("summary", "title")})
    flat["original_headline"] = entry["data"].get("title", "")
    flat["original_summary"] = entry["data"].get("summary", "")
    return flat


def week_candidates(db: Any, config: Config, issue_id: int, *, region: str | None = None,
                    topic: str | None = None, language: str | None = None) -> list[dict]:
    """The week's stories beside the draft, with tags, evidence and "also reported by", best first;
    each says whether and where it is in the issue."""
    issue = get_issue(db, issue_id)
    stories = week_stories(db, config, parse_iso(issue["window_start"]), parse_iso(issue["window_end"]))
    placed = {e["story"]: e for e in load_entries(db, issue_id)}
    out = []
    for story in stories:
        if region and region not in story["regions"]:
            continue
        if topic and topic not in story["topics"]:
            continue
        if language and story["language"] != language:
            continue
        entry = placed.get(story["story"])
        story = {k: v for k, v in story.items() if k != "rank"}
        story["in_issue"] = bool(entry and entry["included"])
        story["section"] = entry["section"] if entry else section_for(story, config.digest.sections)
        out.append(story)
    return out


# -- states -------------------------------------------------------------------------------------

def is_late(db: Any, issue_id: int, now: datetime | None = None) -> bool:
    return parse_iso(get_issue(db, issue_id)["send_at"]) <= _now(now)


def approve_issue(db: Any, config: Config, issue_id: int, by: str, now: datetime | None = None,
                  confirm_late: bool = False) -> dict:
    """draft -> approved, then freeze the recipient list into the outbox.

    An approval after the send time needs confirm_late=True (the issue is then sent at once by the
    scheduler); if freezing the outbox fails the issue goes back to draft.
    """
    now = _now(now)
    by = (by or "").strip()
    if not by:
        raise DigestError("Say who approves the issue (--by NAME).")
    issue = get_issue(db, issue_id)
    if issue["state"] != "draft":
        raise DigestError(f"The issue {issue['week']} is already {issue['state']}.")
    count = db.execute("SELECT count(*) FROM digest_entries WHERE digest_id = ? AND included = 1",
                       [issue_id]).fetchone()[0]
    if not count:
        raise DigestError(f"The issue {issue['week']} has no stories; include some before approving.")
    late = parse_iso(issue["send_at"]) <= now
    if late and not confirm_late:
        raise DigestError(f"The send time of {issue['week']} ({issue['send_at']}) has passed; approving now "
                          "sends it immediately. Confirm the late approval (--yes) to go ahead.")
    from monitor.render import check_size

    check_size(config, db, issue_id)
    with transaction(db):
        changed = db.execute(
            """UPDATE digests SET state = 'approved', approved_by = ?, approved_at = ?,
               approved_late = ?, updated_at = ?, revision = revision + 1
               WHERE id = ? AND state = 'draft'""",
            [by, iso(now), int(late), iso(now), issue_id]).rowcount
        if not changed:  # somebody else approved it a moment ago
            raise DigestError(f"The issue {issue['week']} was approved meanwhile by someone else.")
        db.execute("INSERT INTO digest_edits (digest_id, at, by, action, story, value) VALUES (?,?,?,?,?,?)",
                   [issue_id, iso(now), by, "approve", None, json.dumps({"late": late})])
    try:
        from monitor.outbox import freeze_outbox
    except ModuleNotFoundError as exc:
        if exc.name != "monitor.outbox":
            raise
        log.warning("monitor.outbox is not installed: the recipient list was not frozen")
    else:
        try:
            freeze_outbox(db, config, issue_id)
        except BaseException:
            db.execute("UPDATE digests SET state = 'draft', approved_by = NULL, approved_at = NULL "
                       "WHERE id = ? AND state = 'approved'", [issue_id])
            raise
    return get_issue(db, issue_id)


def set_issue_state(db: Any, issue_id: int, state: str, now: datetime | None = None) -> dict:
    """For the outbox: approved -> sending -> sent (and a failed freeze back to draft)."""
    if state not in STATES:
        raise DigestError(f"'{state}' is not an issue state ({', '.join(STATES)}).")
    now = _now(now)
    issue = get_issue(db, issue_id)
    if issue["state"] != state and issue["state"] not in TRANSITIONS[state]:
        raise DigestError(f"The issue {issue['week']} is {issue['state']}; it cannot become {state}.")
    stamp = {"sending": "sending_at", "sent": "sent_at"}.get(state)
    extra = f", {stamp} = coalesce({stamp}, ?)" if stamp else ""
    db.execute(f"UPDATE digests SET state = ?, updated_at = ?{extra} WHERE id = ?",
               [state, iso(now), *([iso(now)] if stamp else []), issue_id])
    return get_issue(db, issue_id)


def run_due_jobs(db: Any, config: Config, now: datetime | None = None) -> list[str]:
    """Called by `monitor run` every few minutes: draft this week's issue at draft time, hand
    approved issues to the outbox at send time, and report issues not approved in time."""
    now = _now(now)
    messages: list[str] = []
    week = week_of(config, now)
    times = issue_times(config, week)
    if now >= times["draft_at"] and now < times["send_at"] and find_issue(db, week) is None:
        try:
            issue = draft_issue(db, config, week, now=now, by="scheduler")
            count = db.execute("SELECT count(*) FROM digest_entries WHERE digest_id = ? AND included = 1",
                               [issue["id"]]).fetchone()[0]
            messages.append(f"Drafted the digest {week} with {count} stories.")
        except DigestError as exc:
            messages.append(f"Digest {week} not drafted: {exc}")
    for issue in db.query("SELECT * FROM digests WHERE state IN ('draft', 'approved', 'sending') "
                          "AND send_at <= ? ORDER BY send_at", [iso(now)]):
        if issue["state"] == "draft":
            if issue["missed_at"] is None:
                db.execute("UPDATE digests SET missed_at = ? WHERE id = ?", [iso(now), issue["id"]])
                messages.append(f"The digest {issue['week']} was not approved by its send time "
                                f"({issue['send_at']}) and was not sent; approve it to send it late.")
            continue
        try:
            from monitor.outbox import send_issue
        except ModuleNotFoundError as exc:
            if exc.name != "monitor.outbox":
                raise
            messages.append(f"The digest {issue['week']} is due but sending is not installed.")
            continue
        try:
            result = send_issue(db, config, issue["id"])
        except MonitorError as exc:  # SMTP down, another sender running: the next tick retries
            messages.append(f"The digest {issue['week']} could not be sent now: {exc}")
            continue
        summary = result.summary() if hasattr(result, "summary") else result
        messages.append(f"Sent the digest {issue['week']}: {summary}")
    for message in messages:  # the scheduler only logs; these lines are what operators read
        level = logging.WARNING if " not " in message else logging.INFO
        log.log(level, message)
    return messages


def set_sending_state(db: Any, issue_id: int, state: str) -> None:
    """The hook monitor.outbox calls when it starts ('sending') and finishes ('sent') an issue."""
    set_issue_state(db, issue_id, state)
