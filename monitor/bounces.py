"""Bounce processing: reads DSNs (RFC 3464), complaint reports (ARF, RFC 5965) and mailto:
unsubscribe requests from an mbox file, a Maildir or a folder of .eml files; hard bounces,
complaints and unsubscribe requests change subscribers.

Parsing is pure (bytes -> findings); only apply_findings() writes. Soft bounces change nothing.
"""

from __future__ import annotations

import email
import hashlib
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from pathlib import Path

from monitor.errors import MailError, SubscriberError
from monitor.subscribers import hash_email, mark_bounced, mark_complained, unsubscribe


@dataclass(frozen=True)
class Finding:
    kind: str  # hard | soft | complaint
    recipient: str
    status: str = ""  # DSN status code such as 5.1.1
    diagnostic: str = ""
    original_message_id: str = ""


@dataclass
class BounceReport:
    messages: int = 0
    not_reports: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    already_seen: int = 0
    unsubscribe_requests: int = 0  # mails to [smtp] unsubscribe_mailto (List-Unsubscribe mailto:)
    unknown_recipients: int = 0
    marked: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.messages} messages read: {self.hard} hard bounces, {self.soft} soft "
            f"bounces (ignored), {self.complaints} complaints, {self.not_reports} not bounce "
            f"reports, {self.unsubscribe_requests} unsubscribe requests, "
            f"{self.already_seen} already processed, {self.unknown_recipients} for "
            f"addresses not on the list; {len(self.marked)} subscribers changed."
        )


def _address(value: str | None) -> str:
    """'rfc822; Anna@Example.org' -> 'anna@example.org'."""
    if not value:
        return ""
    text = str(value)
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").strip().lower()


def _original_message_id(msg: Message) -> str:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/rfc822-headers", "text/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return str(payload[0].get("Message-ID", "")).strip()
            if isinstance(payload, str):
                inner = email.message_from_string(payload, policy=policy.compat32)
                return str(inner.get("Message-ID", "")).strip()
    return ""


def parse_report(raw: bytes) -> list[Finding] | None:
    """The findings in one message, or None when it is not a DSN or feedback report."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    if msg.get_content_type() != "multipart/report":
        return None
    report_type = (msg.get_param("report-type") or "").lower()
    original_id = _original_message_id(msg)
    findings: list[Finding] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if report_type == "delivery-status" and ctype in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            blocks = part.get_payload()
            if isinstance(blocks, str):  # some MTAs send it as text; parse the field blocks
                blocks = [
                    email.message_from_string(b.strip() + "\n", policy=policy.compat32)
                    for b in blocks.replace("\r\n", "\n").split("\n\n")
                    if b.strip()
                ]
            for block in blocks[1:] if len(blocks) > 1 else blocks:
                recipient = _address(
                    block.get("Final-Recipient") or block.get("Original-Recipient")
                )
                if not recipient:
                    continue
                action = str(block.get("Action", "")).strip().lower()
                status = str(block.get("Status", "")).strip()
                diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
                hard = action == "failed" and status.startswith("5")
                if action in ("delivered", "relayed", "expanded"):
                    continue
                findings.append(
                    Finding(
                        "hard" if hard else "soft", recipient, status, diagnostic[:500], original_id
                    )
                )
        elif report_type == "feedback-report" and ctype == "message/feedback-report":
            fields = part.get_payload()
            block = fields[0] if isinstance(fields, list) and fields else None
            if isinstance(fields, str):
                block = email.message_from_string(fields, policy=policy.compat32)
            recipient = _address(block.get("Original-Rcpt-To")) if block is not None else ""
            if not recipient:
                recipient = _original_to(msg)
            if recipient:
                feedback = str(block.get("Feedback-Type", "abuse")).strip() if block else "abuse"
                findings.append(Finding("complaint", recipient, "", feedback, original_id))
    return findings


def _original_to(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            payload = part.get_payload()
            inner = (
                payload[0]
                if isinstance(payload, list) and payload
                else (
                    email.message_from_string(payload, policy=policy.compat32)
                    if isinstance(payload, str)
                    else None
                )
            )
            if inner is not None and inner.get("To"):
                return _address(email.utils.parseaddr(str(inner["To"]))[1])
    return ""


def read_messages(path: str | Path) -> Iterator[bytes]:
    """Raw messages from a Maildir, a folder of .eml files, an mbox file or one .eml file."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            box = mailbox.Maildir(str(path), factory=None, create=False)
            for key in sorted(box.keys()):
                yield box.get_bytes(key)
            return
        files = sorted(p for p in path.rglob("*.eml") if p.is_file())
        for file in files:
            yield file.read_bytes()
        return
    if not path.exists():
        raise MailError(
            f"{path} does not exist: give an mbox file, a Maildir or a folder of .eml files."
        )
    with path.open("rb") as handle:
        head = handle.read(5)
    if head == b"From ":
        box = mailbox.mbox(str(path), factory=None, create=False)
        try:
            for key in box.iterkeys():
                yield box.get_bytes(key)
        finally:
            box.close()
        return
    yield path.read_bytes()


_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)


def unsubscribe_token(raw: bytes) -> str | None:
    """The token of a mail sent through our List-Unsubscribe mailto: link, if it is one."""
    msg = email.message_from_bytes(raw[:20000], policy=policy.default)
    try:
        subject = str(msg.get("Subject", ""))
    except (ValueError, TypeError):
        return None
    match = _UNSUBSCRIBE_SUBJECT.match(subject)
    return match.group(1) if match else None


def process_path(db, path: str | Path, now: datetime | None = None, config=None) -> BounceReport:
    """Apply every bounce and complaint report found at path (processing twice changes nothing).

    With config, mails sent through the List-Unsubscribe mailto: link (subject
    'unsubscribe <token>') unsubscribe their subscriber too."""
    report = BounceReport()
    now = now or datetime.now(UTC)
    for raw in read_messages(path):
        report.messages += 1
        findings = parse_report(raw)
        if findings is None:
            token = unsubscribe_token(raw) if config is not None else None
            if token:
                try:
                    sub = unsubscribe(db, config, token, how="mailto", now=now)
                except SubscriberError:
                    report.not_reports += 1
                    continue
                report.unsubscribe_requests += 1
                report.marked.append(sub["email"])
                continue
            report.not_reports += 1
            continue
        msg_id = email.message_from_bytes(raw[:20000], policy=policy.compat32).get("Message-ID")
        report_id = str(msg_id).strip() if msg_id else hashlib.sha256(raw).hexdigest()
        for finding in findings:
            apply_finding(db, report, report_id, finding, now)
    return report


def apply_finding(
    db, report: BounceReport, report_id: str, finding: Finding, now: datetime
) -> None:
    if finding.kind == "soft":
        report.soft += 1
        return
    h = hash_email(finding.recipient)
    inserted = db.execute(
        "INSERT OR IGNORE INTO bounce_log (report_id, email_hash, kind, status, diagnostic, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            report_id,
            h,
            finding.kind,
            finding.status,
            finding.diagnostic,
            now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ],
    ).rowcount
    if not inserted:
        report.already_seen += 1
        return
    known = db.execute(
        "SELECT 1 FROM subscribers WHERE email = ? OR smtp_address = ?",
        [finding.recipient, finding.recipient],
    ).fetchone()
    if finding.kind == "hard":
        report.hard += 1
        changed = mark_bounced(
            db, finding.recipient, f"DSN {finding.status} {finding.diagnostic}".strip(), now
        )
        if finding.original_message_id:
            db.execute(
                "UPDATE outbox SET status = 'bounced', last_error = ? WHERE message_id = ? "
                "AND status = 'sent'",
                [f"DSN {finding.status}", finding.original_message_id],
            )
    else:
        report.complaints += 1
        changed = mark_complained(db, finding.recipient, now)
    if not known:
        report.unknown_recipients += 1
    if changed:
        report.marked.append(finding.recipient)
