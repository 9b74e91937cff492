"""Subscribers: addresses, consent, double opt-in, preferences, import/export, erasure, suppression.

The only module that writes the subscribers, suppressions and confirmations tables. It sends just
the confirmation mail (through monitor.mailer); issues go out through monitor.outbox.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from monitor.errors import SubscriberError, SubscriberImportError
from monitor.store import transaction
from monitor.tokens import make_token, read_token

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
# What subscribe() answers in every case, so the page does not reveal who is on the list.
SUBSCRIBE_ANSWER = (
    "Thank you. If this address can receive our mail, a message with a "
    "confirmation link is on its way; the subscription starts once you confirm."
)
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>@,;]+@[^\s<>@,;]+")
_MAX_TEXT = 200


def _iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Address:
    email: str  # the stored, unique form
    smtp_address: str  # the envelope form (punycode domain)


def normalise_email(text: Any) -> Address:
    """Trim, check and normalise an address; SubscriberError with the reason when it is not one.

    The whole address is lowercased: mailbox providers treat the local part case-insensitively,
    and two rows differing only in case would mail one person twice. Plus tags are kept.
    """
    if not isinstance(text, str) or not text.strip():
        raise SubscriberError("The email address is empty.")
    raw = unicodedata.normalize("NFC", text.strip())
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    if any(ch in raw for ch in "\r\n\t") or "," in raw or ";" in raw or raw.count("@") > 1:
        raise SubscriberError(
            f"{shown!r} is not one email address (it contains a line break, "
            "a separator or several addresses)."
        )
    try:
        valid = validate_email(raw, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{shown!r} is not a valid email address: {exc}") from None
    email = valid.normalized.lower()
    smtp_address = (valid.ascii_email or valid.normalized).lower()
    return Address(email=email, smtp_address=smtp_address)


def clean_text(value: Any, what: str) -> str:
    """A name or organisation: one line, no control characters, no address hidden inside it."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SubscriberError(f"The {what} must be text.")
    text = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
        raise SubscriberError(
            f"The {what} {text[:40]!r} contains a line break or control character."
        )
    if _ADDRESS_IN_TEXT.search(text) or "<" in text or ">" in text:
        raise SubscriberError(
            f"The {what} {text[:40]!r} contains an email address or '<' '>'; give the name only."
        )
    if len(text) > _MAX_TEXT:
        raise SubscriberError(f"The {what} is longer than {_MAX_TEXT} characters.")
    return text


def clean_language(value: Any) -> str:
    text = (value or "en").strip().lower() if isinstance(value, str) or value is None else ""
    if not _LANGUAGE.match(text):
        raise SubscriberError(
            f"The language {value!r} must be a two-letter code such as 'en' or 'nl'."
        )
    return text


def clean_tags(config, values: Any, kind: str) -> list[str]:
    """Region or topic slugs from a list or a 'a; b' string, checked against the taxonomy."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in re.split(r"[;,|\s]+", values) if v]
    known = config.taxonomy.regions if kind == "regions" else config.taxonomy.topics
    out = []
    for value in values:
        slug = str(value).strip().lower()
        if slug not in known:
            raise SubscriberError(
                f"{value!r} is not one of the {kind}: {', '.join(sorted(known))}."
            )
        if slug not in out:
            out.append(slug)
    return out


def hash_email(email: str) -> str:
    return hashlib.sha256(("border-monitor-suppression:" + email).encode("utf-8")).hexdigest()


# -- reading ------------------------------------------------------------------------------------


def _row_to_dict(row: dict | None) -> dict | None:
    if row is None:
        return None
    sub = dict(row)
    sub["regions"] = json.loads(sub.get("regions") or "[]")
    sub["topics"] = json.loads(sub.get("topics") or "[]")
    return sub


def _one(db, sql: str, params: list) -> dict | None:
    rows = list(db.query(sql, params))
    return _row_to_dict(rows[0]) if rows else None


def get_subscriber(db, email: str) -> dict | None:
    """The subscriber with this address (any form of it), or None."""
    return _one(db, "SELECT * FROM subscribers WHERE email = ?", [normalise_email(email).email])


def get_subscriber_by_id(db, subscriber_id: int) -> dict | None:
    return _one(db, "SELECT * FROM subscribers WHERE id = ?", [subscriber_id])


def list_subscribers(db, status: str | None = None) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise SubscriberError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    return [
        _row_to_dict(r) for r in db.query(f"SELECT * FROM subscribers {where} ORDER BY id", params)
    ]


def counts_by_status(db) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in db.execute("SELECT status, count(*) FROM subscribers GROUP BY status"):
        counts[status] = n
    return counts


def is_suppressed(db, email: str) -> str | None:
    """'erased' or 'complained' when the address is on the suppression list, else None."""
    row = db.execute(
        "SELECT reason FROM suppressions WHERE email_hash = ?",
        [hash_email(normalise_email(email).email)],
    ).fetchone()
    return row[0] if row else None


# -- links ----------------------------------------------------------------------------------------
# Paths served by the web desk (issue 5): GET shows a page; POST acts (mail scanners follow GETs).


def confirm_url(config, subscriber: dict) -> str:
    return f"{config.web.base_url}/confirm/{make_token(config, 'confirm', subscriber['token_key'])}"


def unsubscribe_url(config, subscriber: dict) -> str:
    token = make_token(config, "unsubscribe", subscriber["token_key"])
    return f"{config.web.base_url}/unsubscribe/{token}"


def preferences_url(config, subscriber: dict) -> str:
    token = make_token(config, "preferences", subscriber["token_key"])
    return f"{config.web.base_url}/preferences/{token}"


def unsubscribe_mailto(config, subscriber: dict) -> str | None:
    """mailto: URI for List-Unsubscribe; the subject carries the signed token."""
    if not config.smtp.unsubscribe_mailto:
        return None
    token = make_token(config, "unsubscribe", subscriber["token_key"])
    return f"mailto:{config.smtp.unsubscribe_mailto}?subject=unsubscribe%20{token}"


def subscriber_from_token(db, config, token: str, purpose: str) -> dict:
    """The subscriber a signed link points at; SubscriberError if broken, expired or erased."""
    key = read_token(config, purpose, token)
    sub = _one(db, "SELECT * FROM subscribers WHERE token_key = ?", [key])
    if sub is None:
        raise SubscriberError("This link belongs to a subscription that no longer exists.")
    return sub


# -- changes --------------------------------------------------------------------------------------


def _consent_values(consent: dict | None, now: datetime) -> dict:
    consent = consent or {}
    how = str(consent.get("how") or "").strip()
    if not how:
        raise SubscriberError(
            "The consent record needs 'how' the person agreed (web, cli, import ...)."
        )
    return {
        "consent_at": consent.get("at") or _iso(now),
        "consent_how": how[:100],
        "consent_text_version": str(consent.get("text_version") or "")[:100],
        "consent_ip": (str(consent["ip"])[:100] if consent.get("ip") else None),
        "consent_user_agent": (
            str(consent["user_agent"])[:500] if consent.get("user_agent") else None
        ),
    }


@dataclass
class Candidate:
    """A validated would-be subscriber (all checks done before anything is written)."""

    address: Address
    name: str
    organisation: str
    language: str
    regions: list[str]
    topics: list[str]


def validate_candidate(
    config, email, name=None, organisation=None, language=None, regions=None, topics=None
) -> Candidate:
    return Candidate(
        address=normalise_email(email),
        name=clean_text(name, "name"),
        organisation=clean_text(organisation, "organisation"),
        language=clean_language(language),
        regions=clean_tags(config, regions, "regions"),
        topics=clean_tags(config, topics, "topics"),
    )


def _insert(db, cand: Candidate, status: str, consent: dict, now: datetime) -> int:
    values = {
        "email": cand.address.email,
        "smtp_address": cand.address.smtp_address,
        "name": cand.name,
        "organisation": cand.organisation,
        "language": cand.language,
        "regions": json.dumps(cand.regions),
        "topics": json.dumps(cand.topics),
        "status": status,
        "token_key": secrets.token_urlsafe(18),
        "created_at": _iso(now),
        "updated_at": _iso(now),
        "confirmed_at": _iso(now) if status == "active" else None,
        **consent,
    }
    cols = ", ".join(values)
    cursor = db.execute(
        f"INSERT INTO subscribers ({cols}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )
    return cursor.lastrowid


def add_subscriber(
    db,
    config,
    email,
    name=None,
    organisation=None,
    language=None,
    regions=None,
    topics=None,
    consent: dict | None = None,
    *,
    status: str = "active",
    now: datetime | None = None,
) -> dict:
    """Add one subscriber (CLI/admin). Refuses duplicates and suppressed addresses with a reason."""
    if status not in ("active", "pending"):
        raise SubscriberError("A new subscriber is either active or pending confirmation.")
    now = now or datetime.now(UTC)
    cand = validate_candidate(config, email, name, organisation, language, regions, topics)
    consent_values = _consent_values(consent, now)
    with transaction(db):
        reason = _suppressed(db, cand.address.email)
        if reason:
            raise SubscriberError(
                f"{cand.address.email} is on the suppression list ({reason}); "
                "it is never mailed again."
            )
        existing = _one(db, "SELECT * FROM subscribers WHERE email = ?", [cand.address.email])
        if existing:
            raise SubscriberError(
                f"{cand.address.email} is already on the list "
                f"(status {existing['status']}, since {existing['created_at']})."
            )
        new_id = _insert(db, cand, status, consent_values, now)
    return get_subscriber_by_id(db, new_id)


def _suppressed(db, email: str) -> str | None:
    row = db.execute(
        "SELECT reason FROM suppressions WHERE email_hash = ?", [hash_email(email)]
    ).fetchone()
    return row[0] if row else None


@dataclass
class SubscribeResult:
    message: str = SUBSCRIBE_ANSWER
    # For logs and tests only, never shown to the visitor: what actually happened.
    detail: str = ""
    mailed: bool = False


def subscribe(
    db,
    config,
    email,
    name=None,
    organisation=None,
    language=None,
    regions=None,
    topics=None,
    consent: dict | None = None,
    now: datetime | None = None,
) -> SubscribeResult:
    """A web sign-up: double opt-in. Same answer whether or not the address is already known.

    Invalid input raises SubscriberError (that reveals nothing about the list). A confirmation
    mail goes out at most once per address per `[smtp] confirm_limit` (24 h).
    """
    now = now or datetime.now(UTC)
    cand = validate_candidate(config, email, name, organisation, language, regions, topics)
    consent_values = _consent_values({"how": "web", **(consent or {})}, now)
    addr = cand.address.email
    with transaction(db):
        if _suppressed(db, addr):
            return SubscribeResult(detail="suppressed")
        existing = _one(db, "SELECT * FROM subscribers WHERE email = ?", [addr])
        if existing and existing["status"] == "active":
            # Preferences are not changed here: anyone can type anyone's address.
            return SubscribeResult(detail="already active")
        if existing:
            db.execute(
                """UPDATE subscribers SET status = 'pending', name = ?, organisation = ?,
                   language = ?, regions = ?, topics = ?, consent_at = ?, consent_how = ?,
                   consent_text_version = ?, consent_ip = ?, consent_user_agent = ?,
                   updated_at = ? WHERE id = ?""",
                [
                    cand.name,
                    cand.organisation,
                    cand.language,
                    json.dumps(cand.regions),
                    json.dumps(cand.topics),
                    consent_values["consent_at"],
                    consent_values["consent_how"],
                    consent_values["consent_text_version"],
                    consent_values["consent_ip"],
                    consent_values["consent_user_agent"],
                    _iso(now),
                    existing["id"],
                ],
            )
            sub_id = existing["id"]
        else:
            sub_id = _insert(db, cand, "pending", consent_values, now)
        since = _iso(now - timedelta(seconds=config.smtp.confirm_limit))
        recent = db.execute(
            "SELECT 1 FROM confirmations WHERE email_hash = ? AND sent_at > ?",
            [hash_email(addr), since],
        ).fetchone()
        if recent:
            return SubscribeResult(detail="confirmation already sent recently")
        # Reserve the slot inside the transaction so two requests at once send one mail.
        log_id = db.execute(
            "INSERT INTO confirmations (email_hash, sent_at) VALUES (?, ?)",
            [hash_email(addr), _iso(now)],
        ).lastrowid
    sub = get_subscriber_by_id(db, sub_id)
    try:
        send_confirmation(config, sub)
    except Exception:
        db.execute("DELETE FROM confirmations WHERE id = ?", [log_id])
        raise
    return SubscribeResult(detail="pending, confirmation sent", mailed=True)


def send_confirmation(config, sub: dict) -> None:
    from monitor.mailer import SmtpSender, build_message, make_message_id

    title = config.digest.title
    link = confirm_url(config, sub)
    greeting = f"Hello {sub['name']},\n\n" if sub["name"] else "Hello,\n\n"
    text = (
        f"{greeting}someone, probably you, asked to receive {title} at this address.\n\n"
        f"To confirm, open this link and press the button on the page:\n{link}\n\n"
        "The link is valid for 7 days. If you did not ask for this, ignore this mail: "
        "you will not hear from us again.\n"
    )
    msg = build_message(
        config,
        to_address=sub["smtp_address"],
        to_name=sub["name"],
        subject=f"Please confirm your subscription to {title}",
        text=text,
        message_id=make_message_id(config, "confirm"),
    )
    with SmtpSender(config.smtp) as sender:
        sender.send_or_raise(sub["smtp_address"], msg)


def confirm(db, config, token: str, now: datetime | None = None) -> dict:
    """Activate the subscription a confirmation link points at (idempotent)."""
    sub = subscriber_from_token(db, config, token, "confirm")
    if sub["status"] == "active":
        return sub
    if sub["status"] != "pending":
        raise SubscriberError(
            "This confirmation link is no longer valid: the subscription was "
            f"{sub['status']} since; sign up again to receive the digest."
        )
    db.execute(
        "UPDATE subscribers SET status = 'active', confirmed_at = ?, updated_at = ? "
        "WHERE id = ? AND status = 'pending'",
        [_iso(now), _iso(now), sub["id"]],
    )
    return get_subscriber_by_id(db, sub["id"])


def unsubscribe(db, config, token: str, how: str = "page", now: datetime | None = None) -> dict:
    """Stop all mail to the subscriber an unsubscribe link points at (idempotent)."""
    sub = subscriber_from_token(db, config, token, "unsubscribe")
    _set_unsubscribed(db, sub["id"], how, now)
    return get_subscriber_by_id(db, sub["id"])


def unsubscribe_email(db, email: str, how: str = "cli", now: datetime | None = None) -> dict:
    sub = get_subscriber(db, email)
    if sub is None:
        raise SubscriberError(f"{normalise_email(email).email} is not on the list.")
    _set_unsubscribed(db, sub["id"], how, now)
    return get_subscriber_by_id(db, sub["id"])


def _set_unsubscribed(db, sub_id: int, how: str, now: datetime | None) -> None:
    # Bounced and complained stay what they are: they are stronger reasons not to mail.
    db.execute(
        """UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?,
                  unsubscribe_how = ?, updated_at = ?
                  WHERE id = ? AND status IN ('pending', 'active')""",
        [_iso(now), str(how)[:50], _iso(now), sub_id],
    )


def update_preferences(
    db,
    config,
    token: str,
    *,
    name=None,
    organisation=None,
    language=None,
    regions=None,
    topics=None,
    now: datetime | None = None,
) -> dict:
    """Change what a subscriber receives (through a preferences link). None leaves a field as is."""
    sub = subscriber_from_token(db, config, token, "preferences")
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = clean_text(name, "name")
    if organisation is not None:
        changes["organisation"] = clean_text(organisation, "organisation")
    if language is not None:
        changes["language"] = clean_language(language)
    if regions is not None:
        changes["regions"] = json.dumps(clean_tags(config, regions, "regions"))
    if topics is not None:
        changes["topics"] = json.dumps(clean_tags(config, topics, "topics"))
    if changes:
        changes["updated_at"] = _iso(now)
        sets = ", ".join(f"{k} = ?" for k in changes)
        db.execute(f"UPDATE subscribers SET {sets} WHERE id = ?", [*changes.values(), sub["id"]])
    return get_subscriber_by_id(db, sub["id"])


def mark_bounced(db, email: str, reason: str, now: datetime | None = None) -> bool:
    """A permanent failure: stop mailing the address. True when a subscriber changed."""
    cursor = db.execute(
        """UPDATE subscribers SET status = 'bounced', bounced_at = ?,
                           bounce_reason = ?, updated_at = ?
                           WHERE (email = ? OR smtp_address = ?)
                             AND status IN ('active', 'pending')""",
        [_iso(now), reason[:500], _iso(now), email.lower(), email.lower()],
    )
    return cursor.rowcount > 0


def mark_complained(db, email: str, now: datetime | None = None) -> bool:
    """A spam complaint (feedback report): never mail again, also after an erasure."""
    email = email.lower()
    row = db.execute(
        "SELECT email FROM subscribers WHERE email = ? OR smtp_address = ?", [email, email]
    ).fetchone()
    stored = row[0] if row else email
    with transaction(db):
        cursor = db.execute(
            "UPDATE subscribers SET status = 'complained', updated_at = ? "
            "WHERE email = ? AND status != 'complained'",
            [_iso(now), stored],
        )
        db.execute(
            "INSERT OR IGNORE INTO suppressions (email_hash, reason, at) VALUES (?, ?, ?)",
            [hash_email(stored), "complained", _iso(now)],
        )
    return cursor.rowcount > 0


# -- export and erasure ---------------------------------------------------------------------------


def export_subscriber(db, email: str) -> dict:
    """Everything we hold about one address (for a data-subject access request)."""
    address = normalise_email(email)
    sub = _one(db, "SELECT * FROM subscribers WHERE email = ?", [address.email])
    if sub is None:
        raise SubscriberError(f"{address.email} is not on the list.")
    sub.pop("token_key", None)
    deliveries = list(
        db.query(
            "SELECT issue_id, message_id, status, attempts, last_error, sent_at FROM outbox "
            "WHERE subscriber_id = ? ORDER BY issue_id",
            [sub["id"]],
        )
    )
    h = hash_email(address.email)
    confirmations = [
        r[0]
        for r in db.execute(
            "SELECT sent_at FROM confirmations WHERE email_hash = ? ORDER BY sent_at", [h]
        )
    ]
    bounces = list(
        db.query(
            "SELECT kind, status, diagnostic, at FROM bounce_log WHERE email_hash = ? ORDER BY at",
            [h],
        )
    )
    return {
        "subscriber": sub,
        "deliveries": deliveries,
        "confirmation_mails": confirmations,
        "bounce_reports": bounces,
        "exported_at": _iso(),
    }


def erase_subscriber(db, email: str, now: datetime | None = None) -> dict:
    """Delete one subscriber's data; keep only the address hash so it is never mailed again.

    Queued deliveries are dropped; past deliveries keep their status without the address.
    """
    address = normalise_email(email)
    with transaction(db):
        sub = _one(db, "SELECT * FROM subscribers WHERE email = ?", [address.email])
        h = hash_email(address.email)
        if sub is not None:
            dropped = db.execute(
                "DELETE FROM outbox WHERE subscriber_id = ? AND status IN ('queued', 'unknown')",
                [sub["id"]],
            ).rowcount
            db.execute(
                "UPDATE outbox SET subscriber_id = NULL, email = '' WHERE subscriber_id = ?",
                [sub["id"]],
            )
            db.execute("DELETE FROM subscribers WHERE id = ?", [sub["id"]])
        else:
            dropped = 0
        db.execute("DELETE FROM confirmations WHERE email_hash = ?", [h])
        db.execute("DELETE FROM bounce_log WHERE email_hash = ?", [h])
        reason = "complained" if sub and sub["status"] == "complained" else "erased"
        db.execute(
            "INSERT OR IGNORE INTO suppressions (email_hash, reason, at) VALUES (?, ?, ?)",
            [h, reason, _iso(now)],
        )
    return {"email": address.email, "found": sub is not None, "dropped_deliveries": dropped}


# -- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "email",
    "name",
    "organisation",
    "language",
    "regions",
    "topics",
    "status",
    "consent_at",
    "consent_how",
    "consent_text_version",
    "created_at",
    "confirmed_at",
)


@dataclass
class ImportReport:
    added: int = 0
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (row, email, why)
    dry_run: bool = False


def import_csv(
    db,
    config,
    path: str | Path,
    *,
    consent_text_version: str = "",
    dry_run: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Import subscribers from CSV (header row needed; only `email` is required).

    Every row is checked first; if any is bad, SubscriberImportError lists them all and nothing is
    written. Addresses already known or suppressed are skipped and reported, never changed.
    Imported subscribers are active; the consent record says `import:<file name>` unless the file
    has consent_at / consent_how / consent_text_version columns.
    """
    now = now or datetime.now(UTC)
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SubscriberError(f"{path}: the file does not exist.") from None
    except UnicodeDecodeError as exc:
        raise SubscriberError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV."
        ) from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "email" not in header:
        raise SubscriberError(
            f"{path}: the first row must be a header with an 'email' column "
            f"(found: {', '.join(header) or 'nothing'})."
        )
    unknown = [h for h in header if h and h not in CSV_COLUMNS]
    if unknown:
        raise SubscriberError(
            f"{path}: unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}."
        )
    reader.fieldnames = header
    problems: list[tuple[int, str]] = []
    rows: list[tuple[int, Candidate, dict]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, start=2):
        if None in row:
            problems.append((number, "has more fields than the header"))
            continue
        values = {k: (v or "").strip() for k, v in row.items() if k}
        if not any(values.values()):
            continue  # blank line
        try:
            cand = validate_candidate(
                config,
                values.get("email"),
                values.get("name"),
                values.get("organisation"),
                values.get("language") or None,
                values.get("regions"),
                values.get("topics"),
            )
            status = values.get("status") or "active"
            if status not in ("active", "pending"):
                raise SubscriberError(f"status {status!r} cannot be imported (active or pending)")
            consent = {
                "how": values.get("consent_how") or f"import:{path.name}",
                "at": values.get("consent_at") or None,
                "text_version": values.get("consent_text_version") or consent_text_version,
            }
            if consent["at"]:
                try:
                    datetime.fromisoformat(consent["at"].replace("Z", "+00:00"))
                except ValueError:
                    raise SubscriberError(
                        f"consent_at {consent['at']!r} is not an ISO date"
                    ) from None
        except SubscriberError as exc:
            problems.append((number, str(exc)))
            continue
        first = seen.get(cand.address.email)
        if first:
            problems.append((number, f"{cand.address.email} is a duplicate of row {first}"))
            continue
        seen[cand.address.email] = number
        rows.append((number, cand, {"status": status, "consent": consent}))
    if problems:
        raise SubscriberImportError(path, problems)
    report = ImportReport(dry_run=dry_run)
    with transaction(db):
        for number, cand, extra in rows:
            reason = _suppressed(db, cand.address.email)
            existing = db.execute(
                "SELECT status FROM subscribers WHERE email = ?", [cand.address.email]
            ).fetchone()
            if reason:
                report.skipped.append((number, cand.address.email, f"suppressed ({reason})"))
            elif existing:
                report.skipped.append(
                    (number, cand.address.email, f"already on the list ({existing[0]})")
                )
            else:
                if not dry_run:
                    _insert(db, cand, extra["status"], _consent_values(extra["consent"], now), now)
                report.added += 1
    return report


def export_csv(db, out, status: str | None = None) -> int:
    """Write the list as CSV (same columns import reads); returns the number of rows."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for sub in list_subscribers(db, status):
        writer.writerow(
            [
                sub["email"],
                sub["name"],
                sub["organisation"],
                sub["language"],
                ";".join(sub["regions"]),
                ";".join(sub["topics"]),
                sub["status"],
                sub["consent_at"],
                sub["consent_how"],
                sub["consent_text_version"],
                sub["created_at"],
                sub["confirmed_at"] or "",
            ]
        )
        n += 1
    return n
