"""Saved searches: stored per analyst, re-run daily or weekly, new matches mailed via monitor.mailer.

`run_due(db, config, now)` is the job the scheduler calls; it mails only items fetched since the
previous run, and records the run even when nothing new matched.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor import mailer
from monitor.archive_queries import SearchParams, export_rows
from monitor.errors import MailError, SearchQueryError
from monitor.store import fts_query

FREQUENCIES = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
MAX_ITEMS_PER_MAIL = 50


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _params_from_row(row: dict) -> SearchParams:
    filters = json.loads(row["filters"] or "{}")
    data = {"q": row["query"], **filters}
    return SearchParams.from_mapping(data)


def save(
    db,
    user_id: int,
    name: str,
    params: SearchParams,
    frequency: str,
    email: str,
    now: datetime | None = None,
) -> int:
    name = " ".join(name.split())[:200]
    if not name:
        raise SearchQueryError("Give the saved search a name.")
    if frequency not in FREQUENCIES:
        raise SearchQueryError("Choose daily or weekly for a saved search.")
    if "@" not in email or any(c in email for c in " \r\n<>,"):
        raise SearchQueryError(f"{email!r} is not an email address.")
    if params.q.strip():
        fts_query(params.q)  # refuse a malformed query now, not at 6 in the morning
    filters = {
        "region": list(params.regions),
        "topic": list(params.topics),
        "language": list(params.languages),
        "source": list(params.sources),
        "relevant": "1" if params.relevant_only else "",
    }
    now_text = _iso(now or datetime.now(UTC))
    cursor = db.execute(
        """INSERT INTO saved_searches (user_id, name, query, filters, frequency, email, created_at,
                                       last_run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            user_id,
            name,
            params.q,
            json.dumps(filters),
            frequency,
            email.strip(),
            now_text,
            now_text,
        ],
    )
    return cursor.lastrowid


def list_for(db, user_id: int | None = None) -> list[dict]:
    where, args = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    rows = list(db.query(f"SELECT * FROM saved_searches {where} ORDER BY name", args))
    for row in rows:
        params = _params_from_row(row)
        row["query_string"] = params.query_string()
    return rows


def delete(db, search_id: int, user_id: int | None = None) -> bool:
    if user_id is None:
        cursor = db.execute("DELETE FROM saved_searches WHERE id = ?", [search_id])
    else:
        cursor = db.execute(
            "DELETE FROM saved_searches WHERE id = ? AND user_id = ?", [search_id, user_id]
        )
    return cursor.rowcount > 0


def due(db, now: datetime) -> list[dict]:
    out = []
    for row in db.query("SELECT * FROM saved_searches ORDER BY id"):
        last = row["last_run_at"] or row["created_at"]
        last_at = datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if now - last_at >= FREQUENCIES[row["frequency"]]:
            out.append(row)
    return out


def run_due(db, config, now: datetime | None = None) -> list[tuple[int, int]]:
    """Mail the new matches of every due saved search; returns (search id, items mailed)."""
    now = now or datetime.now(UTC)
    done = []
    failures: list[str] = []
    sender = None
    try:
        for row in due(db, now):
            params = replace(
                _params_from_row(row),
                sort="date",
                fetched_after=row["last_run_at"] or row["created_at"],
            )
            rows = export_rows(db, params, limit=MAX_ITEMS_PER_MAIL + 1)
            if rows:
                sender = sender or mailer.SmtpSender(config.smtp)
                try:
                    sender.send_or_raise(row["email"], _message(config, row, rows))
                except MailError as exc:
                    # Not marked as run: the same matches are tried again at the next run.
                    failures.append(f"saved search {row['id']} ({row['name']}): {exc}")
                    continue
            db.execute(
                "UPDATE saved_searches SET last_run_at = ?, last_sent_count = ? WHERE id = ?",
                [_iso(now), min(len(rows), MAX_ITEMS_PER_MAIL), row["id"]],
            )
            done.append((row["id"], min(len(rows), MAX_ITEMS_PER_MAIL)))
    finally:
        if sender is not None:
            sender.close()
    if failures:
        raise MailError("Some saved searches could not be mailed: " + "; ".join(failures))
    return done


def _message(config, row: dict, rows: list[dict]) -> bytes:
    more = len(rows) > MAX_ITEMS_PER_MAIL
    rows = rows[:MAX_ITEMS_PER_MAIL]
    link = f"{config.web.base_url}/search?{_params_from_row(row).query_string(sort='date')}"
    lines = [f"New matches for your saved search “{row['name']}” ({row['frequency']}):", ""]
    for item in rows:
        day = (item["published"] or "")[:10]
        lines += [
            f"- {' '.join(item['title'].split())}",
            f"  {item['source']}, {day}",
            f"  {item['url']}",
            "",
        ]
    if more:
        lines.append(f"There are more than {MAX_ITEMS_PER_MAIL} new matches; see them all:")
    else:
        lines.append("Open the search:")
    lines += [link, "", "Change or delete this saved search on the search page of the web desk."]
    subject = f"{len(rows)}{'+' if more else ''} new: {row['name']}"
    return mailer.build_message(
        config,
        to_address=row["email"],
        subject=subject,
        text="\n".join(lines),
        message_id=mailer.make_message_id(config, "saved-search"),
    )
