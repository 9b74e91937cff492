"""The outbox: an issue's recipients frozen at approval, and the single sender that works it off.

Every recipient row moves queued -> sending -> sent|bounced|failed|unknown in its own committed
step, so a kill -9 at any moment leaves at most one row 'sending': on restart it becomes
'unknown' (it may have been delivered) and waits for resolve_unknown(). Nothing is sent twice.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.errors import DigestError, MailError, MonitorError
from monitor.mailer import MimeBody, SmtpSender, build_message, compose_message, make_message_id
from monitor.store import transaction
from monitor.subscribers import (
    _row_to_dict,
    mark_bounced,
    normalise_email,
    unsubscribe_mailto,
    unsubscribe_url,
)

STATUSES = ("queued", "sending", "sent", "unknown", "bounced", "failed", "skipped")
_BATCH = 200
_MAX_BACKOFF = 6 * 3600.0


def _stamp(moment: datetime | None = None) -> str:
    # Microseconds: retry times in tests are fractions of a second; the format sorts as text.
    # isoformat is ~3x cheaper than strftime; the same text for a UTC moment.
    return (moment or datetime.now(UTC)).isoformat(timespec="microseconds")[:26] + "Z"


@dataclass
class SendStats:
    issue_id: int
    recipients: int = 0
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    deferred: int = 0  # 4xx answers (each retried later)
    recovered_unknown: int = 0  # rows in flight when a previous sender died
    remaining: int = 0  # still queued when the run ended
    connections: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        parts = [
            f"issue {self.issue_id}: {self.sent} sent ({rate:.0f}/s)",
            f"{self.bounced} bounced",
            f"{self.failed} failed",
            f"{self.skipped} skipped",
            f"{self.remaining} still queued",
        ]
        if self.unknown:
            parts.append(f"{self.unknown} unknown (decide with resolve_unknown)")
        return ", ".join(parts) + f" of {self.recipients} recipients."


# -- freezing -------------------------------------------------------------------------------------


def freeze_outbox(db, config, issue_id: int) -> int:
    """Freeze the active subscribers as the issue's recipients (once; later calls change nothing).

    Returns the number of recipients.
    """
    domain = config.smtp.from_address.rsplit("@", 1)[1]
    now = _stamp()
    with transaction(db):
        row = db.execute(
            "SELECT recipients FROM outbox_issues WHERE issue_id = ?", [issue_id]
        ).fetchone()
        if row:
            return row[0]
        db.execute(
            """INSERT OR IGNORE INTO outbox (issue_id, subscriber_id, email, message_id, status,
                   created_at, updated_at)
               SELECT ?, id, smtp_address,
                      '<issue' || ? || '.' || id || '.' || lower(hex(randomblob(6))) || '@' || ? || '>',
                      'queued', ?, ?
               FROM subscribers WHERE status = 'active' ORDER BY id""",
            [issue_id, issue_id, domain, now, now],
        )
        count = db.execute("SELECT count(*) FROM outbox WHERE issue_id = ?", [issue_id]).fetchone()[
            0
        ]
        db.execute(
            "INSERT INTO outbox_issues (issue_id, frozen_at, recipients) VALUES (?, ?, ?)",
            [issue_id, now, count],
        )
    return count


def outbox_counts(db, issue_id: int) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in db.execute(
        "SELECT status, count(*) FROM outbox WHERE issue_id = ? GROUP BY status", [issue_id]
    ):
        counts[status] = n
    return counts


def unknown_recipients(db, issue_id: int) -> list[dict]:
    return list(
        db.query(
            "SELECT id, email, message_id, last_error, updated_at FROM outbox "
            "WHERE issue_id = ? AND status = 'unknown' ORDER BY id",
            [issue_id],
        )
    )


def resolve_unknown(db, issue_id: int, resend: bool, ids: list[int] | None = None) -> int:
    """Decide about messages whose delivery is unknown: queue them again (resend=True) or count
    them as sent without re-sending. ids limits the decision to some outbox rows."""
    now = _stamp()
    if resend:
        sets = (
            "status = 'queued', next_attempt_at = NULL, "
            "last_error = 'delivery was unknown; queued again by decision'"
        )
    else:
        sets = (
            "status = 'sent', sent_at = updated_at, "
            "last_error = 'delivery was unknown; counted as sent by decision, not re-sent'"
        )
    where, params = "issue_id = ? AND status = 'unknown'", [issue_id]
    if ids is not None:
        where += f" AND id IN ({', '.join('?' * len(ids))})"
        params += list(ids)
    return db.execute(
        f"UPDATE outbox SET {sets}, updated_at = ? WHERE {where}", [now, *params]
    ).rowcount


# -- the single sender ----------------------------------------------------------------------------


class SendLock:
    """An exclusive lock file beside the database; the kernel releases it if the process dies."""

    def __init__(self, config):
        db_path = Path(config.storage.database)
        self.path = db_path.parent / f"{db_path.name}.send.lock"
        self.fd: int | None = None

    def __enter__(self) -> SendLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise MailError(
                f"Another sender (pid {holder}) is already sending from "
                f"{self.path.parent}; only one may run at a time."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _default_render():
    try:
        from monitor.render import render_issue
    except ImportError as exc:
        raise MailError(
            f"The digest renderer (monitor.render.render_issue) is not available: {exc}."
        ) from None
    return render_issue


def _digest_state(db, issue_id: int) -> str | None:
    if "digests" not in db.table_names():
        return None
    row = db.execute("SELECT state FROM digests WHERE id = ?", [issue_id]).fetchone()
    if row is None:
        raise DigestError(f"There is no digest issue {issue_id}.")
    return row[0]


def _set_digest_state(db, issue_id: int, state: str) -> None:
    """sending/sent belong to the digest module; use its function when it has one."""
    try:
        from monitor import digest
    except ImportError:
        digest = None
    fn = getattr(digest, "set_sending_state", None) if digest else None
    if fn is not None:
        fn(db, issue_id, state)
        return
    if "digests" not in db.table_names():
        return
    column = "sending_at" if state == "sending" else "sent_at"
    db.execute(
        f"UPDATE digests SET state = ?, {column} = coalesce({column}, ?), updated_at = ? "
        "WHERE id = ? AND state != ?",
        [state, _stamp()[:19] + "Z", _stamp()[:19] + "Z", issue_id, state],
    )


def _backoff(config, attempts: int) -> float:
    return min(config.smtp.retry_backoff * 2 ** max(attempts - 1, 0), _MAX_BACKOFF)


def _subscriber_of(row: dict) -> dict:
    keys = (
        "id",
        "email",
        "smtp_address",
        "name",
        "organisation",
        "language",
        "regions",
        "topics",
        "status",
        "token_key",
    )
    return _row_to_dict({k: row[f"s_{k}"] for k in keys})


def send_issue(
    db,
    config,
    issue_id: int,
    render: Callable | None = None,
    progress: Callable[[SendStats], None] | None = None,
    max_messages: int | None = None,
) -> SendStats:
    """Send an issue to its frozen recipients; safe to run again after any crash.

    render(config, db, issue_id, subscriber, test=False) returns an object with .subject, .text
    and .html (monitor.render.render_issue by default). Raises MailError if the SMTP server
    cannot be reached (queued rows stay queued: run again to resume).
    """
    render = render or _default_render()
    started = time.monotonic()
    stats = SendStats(issue_id)
    with SendLock(config):
        state = _digest_state(db, issue_id)
        if state is not None and state not in ("approved", "sending", "sent"):
            raise DigestError(f"Issue {issue_id} is a {state}: approve it before sending.")
        stats.recipients = freeze_outbox(db, config, issue_id)
        stats.recovered_unknown = db.execute(
            "UPDATE outbox SET status = 'unknown', updated_at = ?, last_error = "
            "'the sender stopped while this message was in flight' "
            "WHERE issue_id = ? AND status = 'sending'",
            [_stamp(), issue_id],
        ).rowcount
        stats.unknown = stats.recovered_unknown
        if state != "sent":  # a re-run after resolve_unknown() leaves a sent issue sent
            _set_digest_state(db, issue_id, "sending")
        handled = 0
        prepare: _Preparer | None = None
        answered = _Answered(db, config, stats)
        with SmtpSender(config.smtp) as sender:
            try:
                while max_messages is None or handled < max_messages:
                    rows = list(
                        db.query(
                            """SELECT o.id, o.email, o.message_id, o.attempts,
                                  s.id AS s_id, s.email AS s_email, s.smtp_address AS s_smtp_address,
                                  s.name AS s_name, s.organisation AS s_organisation,
                                  s.language AS s_language, s.regions AS s_regions,
                                  s.topics AS s_topics, s.status AS s_status,
                                  s.token_key AS s_token_key
                           FROM outbox o LEFT JOIN subscribers s ON s.id = o.subscriber_id
                           WHERE o.issue_id = ? AND o.status = 'queued'
                             AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?)
                           ORDER BY o.id LIMIT ?""",
                            [issue_id, _stamp(), _BATCH],
                        )
                    )
                    if not rows:
                        due = db.execute(
                            "SELECT min(next_attempt_at) FROM outbox WHERE issue_id = ? "
                            "AND status = 'queued'",
                            [issue_id],
                        ).fetchone()[0]
                        if due is None:
                            break
                        wait = (
                            datetime.strptime(due, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                            - datetime.now(UTC)
                        ).total_seconds()
                        if wait > 0:
                            time.sleep(min(wait, 30.0))
                        continue
                    if max_messages is not None:
                        rows = rows[: max_messages - handled]
                    if prepare is None:
                        eight_bit = sender.supports("8bitmime")
                        prepare = _Preparer(config, db, issue_id, render, eight_bit)
                    # The next message is prepared while the server digests the current one, and
                    # a delivery is recorded in the same commit that claims the next row.
                    prepared = prepare(rows[0])
                    try:
                        for i, row in enumerate(rows):
                            handled += 1
                            following = rows[i + 1] if i + 1 < len(rows) else None
                            later = _Later(lambda r=following, p=prepare: p(r) if r else None)
                            _deliver(db, row, prepared, sender, stats, later, answered)
                            prepared = later.result()
                            if progress:
                                progress(stats)
                    finally:
                        answered.record()
                    if progress:
                        progress(stats)
            finally:
                stats.connections = sender.connections
        stats.remaining = db.execute(
            "SELECT count(*) FROM outbox WHERE issue_id = ? AND status IN ('queued', 'sending')",
            [issue_id],
        ).fetchone()[0]
        stats.unknown = outbox_counts(db, issue_id)["unknown"]
        if stats.remaining == 0 and state != "sent":
            _set_digest_state(db, issue_id, "sent")
    stats.seconds = time.monotonic() - started
    return stats


def _variant_renderer(render) -> Callable | None:
    """monitor.render.render_variant when render is monitor.render.render_issue: it gives the
    message of a section set with placeholders for the personal links, so the MIME body of each
    variant is encoded once and only filled in per recipient."""
    try:
        from monitor import render as rendering
    except ImportError:
        return None
    return rendering.render_variant if render is rendering.render_issue else None


class _Preparer:
    """The wire bytes for one outbox row, or None when its subscriber is no longer active."""

    _BODIES = 256  # encoded variants kept (at most 2^7 section sets with the bundled config)

    def __init__(self, config, db, issue_id: int, render, allow_8bit: bool):
        self.config, self.db, self.issue_id, self.render = config, db, issue_id, render
        self.allow_8bit = allow_8bit
        self.variant = _variant_renderer(render)
        self.bodies: dict[tuple, MimeBody] = {}

    def __call__(self, row: dict) -> bytes | None:
        if row["s_id"] is None or row["s_status"] != "active":
            return None
        config = self.config
        subscriber = _subscriber_of(row)
        unsubscribe = unsubscribe_url(config, subscriber)
        if self.variant is None:
            rendered = self.render(config, self.db, self.issue_id, subscriber, test=False)
            subject = rendered.subject
            body = MimeBody(rendered.text, rendered.html, allow_8bit=self.allow_8bit).fill()
        else:
            from monitor.render import personal_links

            variant = self.variant(config, self.db, self.issue_id, subscriber, test=False)
            subject = variant.subject
            links = personal_links(config, subscriber, unsubscribe)
            body = self._body(variant).fill(*variant.values(*links))
            if body is None:  # the links cannot be filled into the encoded bytes exactly
                rendered = variant.personalise(*links)
                body = MimeBody(rendered.text, rendered.html, allow_8bit=self.allow_8bit).fill()
        return compose_message(
            config,
            body,
            to_address=row["email"],
            to_name=subscriber["name"],
            subject=subject,
            message_id=row["message_id"],
            unsubscribe_url=unsubscribe,
            unsubscribe_mailto=unsubscribe_mailto(config, subscriber),
            list_id=True,
        )

    def _body(self, variant) -> MimeBody:
        body = self.bodies.get(variant.key)
        if body is None:
            if len(self.bodies) >= self._BODIES:
                self.bodies.clear()
            body = self.bodies[variant.key] = MimeBody(
                variant.text,
                variant.html,
                allow_8bit=self.allow_8bit,
                placeholders=variant.placeholders,
            )
        return body


class _Later:
    """Runs the preparation of the next message while waiting, keeping any error for later."""

    def __init__(self, fn):
        self.fn, self.value, self.error, self.ran = fn, None, None, False

    def __call__(self) -> None:
        self.ran = True
        try:
            self.value = self.fn()
        except BaseException as exc:  # re-raised once the current row is recorded
            self.error = exc

    def result(self):
        if not self.ran:
            self()
        if self.error is not None:
            raise self.error
        return self.value


class _Answered:
    """The delivery answered but not yet recorded: it is recorded in the commit that claims the
    next row, so at most one row is ever 'sending' and a message costs one commit."""

    def __init__(self, db, config, stats: SendStats):
        self.db, self.config, self.stats = db, config, stats
        self.row: dict | None = None
        self.result = None

    def keep(self, row: dict, result) -> None:
        self.row, self.result = row, result

    def record(self) -> None:
        if self.row is not None:
            row, self.row = self.row, None
            _record(self.db, self.config, row, self.result, self.stats)

    def record_and_claim(self, row: dict) -> bool:
        """Record the kept delivery and claim row ('sending') in one commit; False (and the row
        skipped) when its subscriber is no longer active."""
        if self.row is not None and self.result.outcome != "sent":
            self.record()
        db, now = self.db, _stamp()
        with transaction(db):
            if self.row is not None:
                _record_sent(db, self.row, now)
            # The subscriber is checked again here: the batch was read a moment ago, and someone
            # who unsubscribed since must not get this issue.
            claimed = db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, "
                "updated_at = ? WHERE id = ? AND status = 'queued' AND EXISTS (SELECT 1 FROM "
                "subscribers s WHERE s.id = outbox.subscriber_id AND s.status = 'active')",
                [now, row["id"]],
            ).rowcount
            skipped = 0
            if not claimed:
                skipped = db.execute(
                    "UPDATE outbox SET status = 'skipped', updated_at = ?, "
                    "last_error = 'subscriber no longer active' WHERE id = ? AND status = 'queued'",
                    [now, row["id"]],
                ).rowcount
        if self.row is not None:
            self.row = None
            self.stats.sent += 1
        self.stats.skipped += skipped
        return bool(claimed)


def _deliver(
    db,
    row: dict,
    data: bytes | None,
    sender: SmtpSender,
    stats: SendStats,
    while_waiting,
    answered: _Answered,
) -> None:
    """Claim one row and hand its message over; the answer is kept in `answered`."""
    outbox_id = row["id"]
    if data is None:
        # Unsubscribed, bounced or erased since the list was frozen.
        answered.record()
        db.execute(
            "UPDATE outbox SET status = 'skipped', updated_at = ?, last_error = ? "
            "WHERE id = ? AND status = 'queued'",
            [_stamp(), f"subscriber is {row['s_status'] or 'erased'}", outbox_id],
        )
        stats.skipped += 1
        return
    claimed = False

    def claim() -> bool:
        # Committed while the server reads MAIL FROM, before any of the message is handed over.
        nonlocal claimed
        claimed = answered.record_and_claim(row)
        return claimed

    try:
        result = sender.send(row["email"], data, while_waiting=while_waiting, claim=claim)
    except BaseException:
        if claimed:
            # Connection or sender refused before anything was handed over: not delivered.
            db.execute(
                "UPDATE outbox SET status = 'queued', attempts = attempts - 1, updated_at = ? "
                "WHERE id = ?",
                [_stamp(), outbox_id],
            )
        raise
    if result.outcome != "cancelled":
        answered.keep(row, result)


def _record_sent(db, row: dict, stamp: str) -> None:
    db.execute(
        "UPDATE outbox SET status = 'sent', sent_at = ?, updated_at = ?, last_error = NULL "
        "WHERE id = ?",
        [stamp, stamp, row["id"]],
    )


def _record(db, config, row: dict, result, stats: SendStats) -> None:
    outbox_id = row["id"]
    now = datetime.now(UTC)
    if result.outcome == "sent":
        _record_sent(db, row, _stamp(now))
        stats.sent += 1
    elif result.outcome == "permanent":
        with transaction(db):
            db.execute(
                "UPDATE outbox SET status = 'bounced', updated_at = ?, last_error = ? WHERE id = ?",
                [_stamp(now), result.describe(), outbox_id],
            )
            mark_bounced(db, row["s_email"], f"SMTP {result.describe()}", now)
        stats.bounced += 1
    elif result.outcome == "unknown":
        db.execute(
            "UPDATE outbox SET status = 'unknown', updated_at = ?, last_error = ? WHERE id = ?",
            [_stamp(now), result.describe(), outbox_id],
        )
        stats.unknown += 1
    else:
        attempts = row["attempts"] + 1
        stats.deferred += 1
        if attempts >= config.smtp.max_attempts:
            db.execute(
                "UPDATE outbox SET status = 'failed', updated_at = ?, last_error = ? WHERE id = ?",
                [_stamp(now), f"gave up after {attempts} attempts: {result.describe()}", outbox_id],
            )
            stats.failed += 1
        else:
            retry_at = now + timedelta(seconds=_backoff(config, attempts))
            db.execute(
                "UPDATE outbox SET status = 'queued', next_attempt_at = ?, updated_at = ?, "
                "last_error = ? WHERE id = ?",
                [_stamp(retry_at), _stamp(now), result.describe(), outbox_id],
            )


def send_test(db, config, issue_id: int, address: str, render: Callable | None = None) -> str:
    """Send one test copy of an issue to address (not recorded in the outbox); the Message-ID."""
    render = render or _default_render()
    target = normalise_email(address)
    row = db.execute("SELECT * FROM subscribers WHERE email = ?", [target.email]).fetchone()
    subscriber = None
    if row is not None:
        cols = [d[0] for d in db.execute("SELECT * FROM subscribers LIMIT 0").description]
        subscriber = _row_to_dict(dict(zip(cols, row, strict=True)))
    rendered = render(config, db, issue_id, subscriber, test=True)
    subject = (
        rendered.subject if rendered.subject.startswith("[TEST]") else f"[TEST] {rendered.subject}"
    )
    message_id = make_message_id(config, f"test{issue_id}")
    data = build_message(
        config,
        to_address=target.smtp_address,
        to_name=subscriber["name"] if subscriber else "",
        subject=subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id,
        unsubscribe_url=unsubscribe_url(config, subscriber) if subscriber else None,
        unsubscribe_mailto=unsubscribe_mailto(config, subscriber) if subscriber else None,
        list_id=True,
    )
    with SmtpSender(config.smtp) as sender:
        sender.send_or_raise(target.smtp_address, data)
    return message_id


# -- a process entry point (used by the crash tests and handy for operators) ---------------------


def _load_callable(spec: str) -> Callable:
    module_name, _, attr = spec.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.outbox", description="Send (or resume sending) one digest issue."
    )
    parser.add_argument("--config", required=True)
    parser.add_argument("--render", help="module:function to render with (default: monitor.render)")
    parser.add_argument("issue_id", type=int)
    args = parser.parse_args(argv)
    from monitor.config import load_config
    from monitor.store import open_db

    try:
        config = load_config(args.config)
        db = open_db(config.storage.database)
        render = _load_callable(args.render) if args.render else None
        stats = send_issue(db, config, args.issue_id, render=render)
    except MonitorError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(stats.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
