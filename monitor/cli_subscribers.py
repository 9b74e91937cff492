"""CLI: `monitor subscribers add|import|export|remove|list`, `monitor bounces process PATH`,
`monitor outbox status|resolve`. Thin over monitor.subscribers, monitor.bounces, monitor.outbox."""

from __future__ import annotations

import json
import sys

import click

from monitor.errors import DigestError


def _issue_id(db, issue: str) -> int:
    """An issue given as its id (12) or its ISO week (2026-W49)."""
    if issue.isdigit():
        return int(issue)
    row = (
        db.execute("SELECT id FROM digests WHERE week = ?", [issue.strip().upper()]).fetchone()
        if "digests" in db.table_names()
        else None
    )
    if row is None:
        raise DigestError(
            f"There is no digest issue for {issue!r} (give an id or a week such as 2026-W49)."
        )
    return row[0]


def register(cli: click.Group) -> None:
    from monitor.cli import AppContext, pass_app

    @cli.group("subscribers")
    def subscribers_group() -> None:
        """The mailing list: add, import, export, remove, list."""

    @subscribers_group.command("add")
    @click.argument("email")
    @click.option("--name", default="", help="The person's name.")
    @click.option("--organisation", default="", help="Their organisation.")
    @click.option("--language", default="en", show_default=True, help="Two-letter language code.")
    @click.option(
        "--region",
        "regions",
        multiple=True,
        metavar="SLUG",
        help="Only sections about this region (repeatable; default: everything).",
    )
    @click.option(
        "--topic",
        "topics",
        multiple=True,
        metavar="SLUG",
        help="Only sections about this topic (repeatable; default: everything).",
    )
    @click.option(
        "--consent-text",
        default="",
        metavar="VERSION",
        help="Version of the consent text the person agreed to.",
    )
    @click.option(
        "--double-opt-in",
        is_flag=True,
        help="Send a confirmation mail; the subscription starts when they confirm.",
    )
    @pass_app
    def add(
        app: AppContext,
        email,
        name,
        organisation,
        language,
        regions,
        topics,
        consent_text,
        double_opt_in,
    ) -> None:
        """Add one subscriber (active at once, unless --double-opt-in)."""
        from monitor import subscribers as subs

        consent = {"how": "cli", "text_version": consent_text}
        if double_opt_in:
            result = subs.subscribe(
                app.db,
                app.config,
                email,
                name,
                organisation,
                language,
                list(regions),
                list(topics),
                consent,
            )
            click.echo(f"{subs.normalise_email(email).email}: {result.detail}.")
            return
        sub = subs.add_subscriber(
            app.db,
            app.config,
            email,
            name,
            organisation,
            language,
            list(regions),
            list(topics),
            consent,
        )
        click.echo(f"Added {sub['email']} (active, id {sub['id']}).")

    @subscribers_group.command("import")
    @click.argument("csv_file", type=click.Path(dir_okay=False))
    @click.option(
        "--consent-text",
        default="",
        metavar="VERSION",
        help="Consent text version for rows without a consent_text_version column.",
    )
    @click.option("--dry-run", is_flag=True, help="Check and report, write nothing.")
    @pass_app
    def import_(app: AppContext, csv_file, consent_text, dry_run) -> None:
        """Import subscribers from a CSV file with a header row (email required).

        Columns: email, name, organisation, language, regions, topics (slugs separated by ';'),
        status (active or pending), consent_at, consent_how, consent_text_version. If any row is
        bad, every bad row is listed and nothing is imported.
        """
        from monitor.subscribers import import_csv

        report = import_csv(
            app.db, app.config, csv_file, consent_text_version=consent_text, dry_run=dry_run
        )
        for row, email, why in report.skipped:
            click.echo(f"row {row}: {email} skipped: {why}")
        verb = "would be added" if dry_run else "added"
        click.echo(f"{report.added} subscribers {verb}, {len(report.skipped)} skipped.")

    @subscribers_group.command("export")
    @click.argument("email", required=False)
    @click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write to FILE.")
    @click.option("--status", default=None, help="Only subscribers with this status (list export).")
    @pass_app
    def export(app: AppContext, email, out_path, status) -> None:
        """With EMAIL: everything held about that person, as JSON. Without: the list as CSV."""
        from monitor import subscribers as subs

        out = open(out_path, "w", encoding="utf-8", newline="") if out_path else sys.stdout
        try:
            if email:
                json.dump(subs.export_subscriber(app.db, email), out, indent=2, ensure_ascii=False)
                out.write("\n")
                count = 1
            else:
                count = subs.export_csv(app.db, out, status)
        finally:
            if out_path:
                out.close()
        if out_path:
            click.echo(f"Wrote {count} subscriber(s) to {out_path}.")

    @subscribers_group.command("remove")
    @click.argument("email")
    @click.option(
        "--erase",
        is_flag=True,
        help="Delete all their data (right to erasure); the address stays suppressed.",
    )
    @pass_app
    def remove(app: AppContext, email, erase) -> None:
        """Unsubscribe one address, or with --erase delete everything held about it."""
        from monitor import subscribers as subs

        if erase:
            result = subs.erase_subscriber(app.db, email)
            what = "Erased" if result["found"] else "Not on the list; suppressed"
            click.echo(
                f"{what} {result['email']}; it will not be mailed again"
                f" ({result['dropped_deliveries']} queued deliveries dropped)."
            )
            return
        sub = subs.unsubscribe_email(app.db, email, how="cli")
        click.echo(f"{sub['email']} is now {sub['status']}.")

    @subscribers_group.command("list")
    @click.option(
        "--status", default=None, help="pending, active, unsubscribed, bounced, complained"
    )
    @click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
    @pass_app
    def list_(app: AppContext, status, as_json) -> None:
        """List subscribers with their status and preferences."""
        from monitor import subscribers as subs

        rows = subs.list_subscribers(app.db, status)
        for sub in rows:
            if as_json:
                sub.pop("token_key", None)
                click.echo(json.dumps(sub, ensure_ascii=False))
            else:
                prefs = ",".join(sub["regions"] + sub["topics"]) or "everything"
                click.echo(f"{sub['email']:<40} {sub['status']:<12} {sub['language']}  {prefs}")
        if not as_json:
            counts = subs.counts_by_status(app.db)
            click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))

    @cli.group("bounces")
    def bounces_group() -> None:
        """Bounce and complaint reports."""

    @bounces_group.command("process")
    @click.argument("path", type=click.Path())
    @pass_app
    def process(app: AppContext, path) -> None:
        """Read DSNs and complaint reports from an mbox file, a Maildir or a folder of .eml files;
        hard bounces mark the address bounced, complaints suppress it, and mails sent through the
        List-Unsubscribe mailto: link unsubscribe their sender's subscription."""
        from monitor.bounces import process_path

        report = process_path(app.db, path, config=app.config)
        for email in report.marked:
            click.echo(f"marked {email}")
        click.echo(report.summary())

    @cli.group("outbox")
    def outbox_group() -> None:
        """Recipients of an issue: status, and decisions about unknown deliveries."""

    @outbox_group.command("status")
    @click.argument("issue")
    @pass_app
    def status_(app: AppContext, issue) -> None:
        """Counts by delivery status for ISSUE (an id or a week such as 2026-W49)."""
        from monitor.outbox import outbox_counts, unknown_recipients

        issue_id = _issue_id(app.db, issue)
        counts = outbox_counts(app.db, issue_id)
        click.echo(
            ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "No recipients frozen yet."
        )
        for row in unknown_recipients(app.db, issue_id):
            click.echo(f"unknown: {row['email']} ({row['last_error']})")

    @outbox_group.command("resolve")
    @click.argument("issue")
    @click.option(
        "--resend/--assume-sent",
        required=True,
        help="Queue the unknown deliveries again, or count them as sent.",
    )
    @pass_app
    def resolve(app: AppContext, issue, resend) -> None:
        """Decide about deliveries left 'unknown' by an interrupted send."""
        from monitor.outbox import resolve_unknown

        n = resolve_unknown(app.db, _issue_id(app.db, issue), resend)
        click.echo(
            f"{n} unknown deliveries "
            + ("queued again: run `monitor digest send`." if resend else "counted as sent.")
        )
