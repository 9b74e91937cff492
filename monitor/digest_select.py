"""Which stories a weekly issue proposes: the week's window, one story per cluster, ranking, summaries.

Reads the archive (items, item_tags, item_sources) and returns plain dicts; it never writes. The
curator's edits on top of this proposal live in monitor.digest.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config import WEEKDAYS, Config, DigestSection
from monitor.errors import DigestError
from monitor.urls import host_of, safe_url

_WEEK = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def parse_week(text: str) -> str:
    """'2026-W7' / '2026W07' -> '2026-W07'; DigestError for anything that is not an ISO week."""
    match = _WEEK.match(str(text))
    if not match:
        raise DigestError(f"'{text}' is not an ISO week such as 2026-W47.")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise DigestError(f"'{text}': {year} has no week {week}.") from None
    return f"{year}-W{week:02d}"


def week_of(config: Config, now: datetime | None = None) -> str:
    """The issue being gathered at `now`: the one whose stories window contains it.

    That is the ISO week of `now` in the digest's time zone until that week's send time, and the
    next week from then on: after Friday's send, new items belong to next Friday's issue, so the
    desk, `digest draft` and the demo must not keep offering the issue that has just closed.
    """
    now = now or datetime.now(UTC)
    local = now.astimezone(ZoneInfo(config.digest.timezone))
    year, week, _ = local.isocalendar()
    name = f"{year}-W{week:02d}"
    if now >= issue_times(config, name)["send_at"]:
        year, week, _ = (local + timedelta(days=7)).isocalendar()
        name = f"{year}-W{week:02d}"
    return name


def _local_at(config: Config, week: str, day: str, clock: str) -> datetime:
    tz = ZoneInfo(config.digest.timezone)
    year, number = (int(part) for part in week.split("-W"))
    day_date = date.fromisocalendar(year, number, WEEKDAYS.index(day) + 1)
    hour, minute = (int(part) for part in clock.split(":"))
    return datetime.combine(day_date, time(hour, minute), tzinfo=tz)


def issue_times(config: Config, week: str) -> dict[str, datetime]:
    """UTC datetimes of an issue: the stories window is the 7 days up to its send time.

    Consecutive issues neither overlap nor leave gaps; a re-draft between draft and send time
    picks up the stories published since.
    """
    week = parse_week(week)
    d = config.digest
    send_local = _local_at(config, week, d.send_day, d.send_time)
    draft_local = _local_at(config, week, d.draft_day, d.draft_time)
    # Wall-clock arithmetic on the local time keeps "same time last week" right across DST.
    start_local = (send_local - timedelta(days=7)).replace(tzinfo=ZoneInfo(d.timezone))
    return {"window_start": start_local.astimezone(UTC), "window_end": send_local.astimezone(UTC),
            "draft_at": draft_local.astimezone(UTC), "send_at": send_local.astimezone(UTC)}


# -- text ---------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]{0,2000}>")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "no", "nr", "art", "vs", "etc", "e.g", "i.e", "z.b", "bzw",
    "ca", "sig", "mme", "av", "ul", "gen", "col", "lt", "jan", "feb", "aug", "sept", "oct", "nov",
    "dec", "inc", "ltd", "co", "jr", "sr", "u.a", "d.h", "vgl", "dott", "sen", "rep", "gov", "pp",
}
_BOUNDARY = re.compile(r"([.!?…;]|[.!?][\"'»”’)\]]+)\s+")


def clean_text(text: object) -> str:
    """Plain one-line text: tags dropped, entities decoded, invisible characters and runs of space gone."""
    if not text:
        return ""
    value = str(text)
    if "<" in value:
        value = _TAG.sub(" ", value)
    value = html.unescape(value).translate(_INVISIBLE)
    value = _CONTROL.sub(" ", value)
    return " ".join(value.split())


def sentences(text: str) -> list[str]:
    """Split prose into sentences; abbreviations, initials and numbers do not end a sentence."""
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        following = text[end:end + 1]
        if not following:
            break
        if match.group(1) == ";" and following not in "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ":
            continue  # ';' ends a sentence only as the Greek question mark
        if not (following.isupper() or following.isdigit() or following in "\"'«„“‘(¿¡"):
            continue
        before = text[start:match.start() + 1].rstrip(".!?…\"'»”’)] ").split()
        last = before[-1].lower().rstrip(".") if before else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        piece = text[start:match.end()].strip()
        if piece:
            out.append(piece)
        start = end
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


_PARAGRAPH = re.compile(r"\s*\n\s*|</p>|<br\s*/?>", re.IGNORECASE)
_ENDS_SENTENCE = tuple(".!?…\"'»”’)")


def _prose_sentences(text: str) -> list[str]:
    """Sentences of the prose paragraphs; short lines without a full stop (sub-headings, bylines,
    datelines) are skipped rather than glued to the next sentence."""
    out: list[str] = []
    for raw in _PARAGRAPH.split(text or ""):
        paragraph = clean_text(raw)
        if not paragraph:
            continue
        if not paragraph.endswith(_ENDS_SENTENCE) and len(paragraph) < 160:
            continue
        out.extend(sentences(paragraph))
    return out


def summarise(title: str, summary: str, body: str, *, max_sentences: int = 3,
              max_chars: int = 420) -> str:
    """Two or three sentences from the article: the lede of the text, else the feed summary."""
    title_key = clean_text(title).lower().rstrip(".")
    best: list[str] = []
    for source in (body[:4000], summary):
        picked = [s for s in _prose_sentences(source) if s.lower().rstrip(".") != title_key][:8]
        if len(picked) >= 2 or (picked and not best):
            best = picked
        if len(best) >= 2:
            break
    out: list[str] = []
    for sentence in best:
        if len(out) >= max_sentences:
            break
        if out and len(" ".join([*out, sentence])) > max_chars:
            break
        out.append(sentence)
    text = " ".join(out)
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0].rstrip(",;:-–") + " …"
    return text


# -- stories ------------------------------------------------------------------------------------

_ITEM_COLUMNS = """i.id, i.url, i.source, i.title, i.summary, substr(i.text, 1, 4000) AS text,
    i.language, i.published, i.fetched_at, i.full_text, i.cluster_id,
    coalesce(i.cluster_id, i.id) AS story, coalesce(i.published, i.fetched_at) AS at"""


def source_weight(config: Config, name: str) -> float:
    try:
        return config.source(name).weight
    except KeyError:
        return 1.0


def source_label(url: str | None, source: str) -> str:
    host = host_of(url or "")
    if host.startswith("www."):
        host = host[4:]
    return host or source


def week_stories(db: Any, config: Config, start: datetime, end: datetime) -> list[dict]:
    """The relevant stories published in [start, end), best first: one dict per story cluster."""
    rows = list(db.query(
        f"""SELECT {_ITEM_COLUMNS} FROM items i
            WHERE i.relevant = 1 AND coalesce(i.published, i.fetched_at) >= ?
              AND coalesce(i.published, i.fetched_at) < ?""",
        [iso(start), iso(end)]))
    return _stories(db, config, rows)


def story_by_key(db: Any, config: Config, story: int) -> dict | None:
    """One story (all items of the cluster, whatever their week), or None if it is gone."""
    rows = list(db.query(
        f"SELECT {_ITEM_COLUMNS} FROM items i WHERE i.cluster_id = ? OR i.id = ?", [story, story]))
    rows = [r for r in rows if r["story"] == story]
    stories = _stories(db, config, rows)
    return stories[0] if stories else None


def _chunks(values: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _stories(db: Any, config: Config, rows: list[dict]) -> list[dict]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    tags: dict[int, list[dict]] = {}
    outlets: dict[int, set[str]] = {}
    reviewed: set[int] = set()
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        reviewed.update(r[0] for r in db.execute(
            f"SELECT DISTINCT item_id FROM tag_reviews WHERE item_id IN ({marks})", list(chunk)))
        for item_id, kind, tag, score, evidence in db.execute(
            f"SELECT item_id, kind, tag, score, evidence FROM item_tags WHERE item_id IN ({marks})",
            list(chunk),
        ):
            try:
                evidence = json.loads(evidence)
            except (TypeError, ValueError):
                pass
            tags.setdefault(item_id, []).append(
                {"kind": kind, "tag": tag, "score": score, "evidence": evidence})
        for item_id, source in db.execute(
            f"SELECT item_id, source FROM item_sources WHERE item_id IN ({marks})", list(chunk)
        ):
            outlets.setdefault(item_id, set()).add(source)
    by_story: dict[int, list[dict]] = {}
    for row in rows:
        row["weight"] = source_weight(config, row["source"])
        row["outlets"] = outlets.get(row["id"], set()) | {row["source"]}
        by_story.setdefault(row["story"], []).append(row)
    stories = [_story(config, members, tags, reviewed) for members in by_story.values()]
    stories.sort(key=lambda s: s["rank"], reverse=True)
    return stories


def _story(config: Config, members: list[dict], tags: dict[int, list[dict]],
           reviewed: set[int] = frozenset()) -> dict:
    # The item shown: the most trusted outlet's, complete text first, earliest first.
    members.sort(key=lambda r: (-r["weight"], -int(bool(r["full_text"])), r["at"] or "", r["id"]))
    rep = members[0]
    all_outlets = set().union(*(m["outlets"] for m in members))
    story_tags: dict[tuple[str, str], dict] = {}
    # A curator who corrected one report's tags corrected the story: where some of its reports
    # were reviewed, their tags are the story's (the others' would put it back where it was).
    tagged_by = [m for m in members if m["id"] in reviewed] or members
    for member in tagged_by:
        for tag in tags.get(member["id"], []):
            key = (tag["kind"], tag["tag"])
            if key not in story_tags or tag["score"] > story_tags[key]["score"]:
                story_tags[key] = dict(tag, item_id=member["id"])
    also = []
    seen_sources = {rep["source"]}
    for member in members[1:]:
        if member["source"] in seen_sources:
            continue
        seen_sources.add(member["source"])
        also.append({"item_id": member["id"], "source": member["source"],
                     "label": source_label(member["url"], member["source"]),
                     "url": member["url"], "title": clean_text(member["title"]),
                     "published": member["at"], "language": member["language"]})
    latest = max(m["at"] or "" for m in members)
    max_weight = max(m["weight"] for m in members)
    return {
        "story": rep["story"],
        "item_id": rep["id"],
        "url": rep["url"],
        "safe_url": safe_url(rep["url"]),
        "source": rep["source"],
        "source_label": source_label(rep["url"], rep["source"]),
        "title": clean_text(rep["title"]),
        "summary": summarise(rep["title"], rep["summary"], rep["text"]),
        "language": rep["language"],
        "published": rep["at"],
        "outlets": len(all_outlets),
        "items": len(members),
        "weight": max_weight,
        "rank": (len(all_outlets), max_weight, latest),
        "score": round(len(all_outlets) + max_weight / 100, 4),
        "regions": sorted(t for k, t in story_tags if k == "region"),
        "topics": sorted(t for k, t in story_tags if k == "topic"),
        "tags": sorted(story_tags.values(), key=lambda t: (t["kind"], -t["score"], t["tag"])),
        "also": also,
    }


def section_for(story: dict, sections: Sequence[DigestSection]) -> str | None:
    """The first configured section whose regions or topics the story carries (None: no section)."""
    regions, topics = set(story["regions"]), set(story["topics"])
    for section in sections:
        if not section.regions and not section.topics:
            return section.slug
        if regions & set(section.regions) or topics & set(section.topics):
            return section.slug
    return None


def proposal(config: Config, stories: list[dict]) -> list[dict]:
    """Entries in section order: each story in its first matching section, the top `max` included."""
    per_section: dict[str, list[dict]] = {s.slug: [] for s in config.digest.sections}
    for story in stories:
        slug = section_for(story, config.digest.sections)
        if slug is None:
            continue
        bucket = per_section[slug]
        limit = next(s.max_items for s in config.digest.sections if s.slug == slug)
        bucket.append(entry_from_story(story, slug, included=len(bucket) < limit))
    return [entry for bucket in per_section.values() for entry in bucket]


def entry_from_story(story: dict, section: str, included: bool, manual: bool = False) -> dict:
    """A digest entry (as stored in digest_entries) showing `story` in `section`."""
    return {"story": story["story"], "item_id": story["item_id"], "section": section,
            "included": bool(included), "headline": story["title"] or story["source_label"],
            "summary": story["summary"], "score": story["score"], "outlets": story["outlets"],
            "manual": manual, "data": _entry_data(story)}


def _entry_data(story: dict) -> dict:
    keep = ("url", "source", "source_label", "title", "summary", "language", "published", "also",
            "regions", "topics", "items")
    return {k: story[k] for k in keep}
