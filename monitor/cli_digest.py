"""`monitor digest ...`: draft, show, edit, history, preview, approve, send. Thin over monitor.digest."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from monitor import digest
from monitor.errors import DigestError


def _who(value: str | None) -> str:
    if value:
        return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


_week = click.option("--week", metavar="YYYY-Www", help="ISO week of the issue (default: this week).")
_by = click.option("--by", metavar="NAME", help="Who is acting (default: your login name).")


def register(cli: click.Group) -> None:
    from monitor.cli import pass_app

    @cli.group("digest")
    def digest_group() -> None:
        """The weekly digest: draft, curate, preview, approve, send."""

    @digest_group.command("draft")
    @_week
    @_by
    @pass_app
    def draft(app, week, by) -> None:
        """Draft (or re-draft) the issue from the week's stories; curator edits are kept."""
        issue = digest.draft_issue(app.db, app.config, week, by=_who(by))
        view = digest.issue_view(app.db, app.config, issue["id"])
        click.echo(f"Drafted {issue['week']}: {view['story_count']} stories in "
                   f"{sum(1 for s in view['sections'] if s['entries'])} sections, "
                   f"{len(view['candidates'])} more candidates. Send time {issue['send_at']}.")

    @digest_group.command("show")
    @_week
    @click.option("--json", "as_json", is_flag=True, help="Print the issue as JSON.")
    @click.option("--candidates", is_flag=True, help="Also list stories placed but not included.")
    @pass_app
    def show(app, week, as_json, candidates) -> None:
        """Show the issue: state, sections and numbered stories (#story ids are used by `edit`)."""
        issue = digest.issue_for_week(app.db, app.config, week)
        view = digest.issue_view(app.db, app.config, issue["id"])
        if as_json:
            click.echo(json.dumps(view, ensure_ascii=False, indent=2, default=str))
            return
        click.echo(f"{view['title']} {view['week']} [{view['state']}] - {view['story_count']} stories; "
                   f"send at {view['send_at']}" + (" (LATE)" if view["late"] else ""))
        if view["approved_by"]:
            click.echo(f"Approved by {view['approved_by']} at {view['approved_at']}")
        if view["intro"]:
            click.echo(f"\nIntro: {view['intro']}")
        for section in view["sections"]:
            click.echo(f"\n== {section['title']} ({section['slug']}, {len(section['entries'])}/{section['max']})")
            for entry in section["entries"]:
                mark = "*" if entry["manual"] else " "
                click.echo(f" {entry['position']:>2}.{mark}#{entry['story']:<6} {entry['headline'][:90]}")
                also = ", ".join(a["label"] for a in entry["also"])
                click.echo(f"          {entry['source_label']}, {(entry['published'] or '')[:10]}"
                           + (f"; also: {also}" if also else ""))
        if candidates and view["candidates"]:
            click.echo("\n== Not included")
            for entry in view["candidates"]:
                click.echo(f"     #{entry['story']:<6} [{entry['section']}] {entry['headline'][:90]}")

    @digest_group.command("list")
    @click.option("--state", type=click.Choice(digest.STATES), multiple=True, help="Only these states.")
    @pass_app
    def list_cmd(app, state) -> None:
        """The issues, newest first: week, state, stories, send time, approval."""
        issues = digest.list_issues(app.db, state)
        if not issues:
            click.echo("No digest issues yet: `monitor digest draft` makes this week's.")
        for issue in issues:
            count = app.db.execute("SELECT count(*) FROM digest_entries WHERE digest_id = ? AND included = 1",
                                   [issue["id"]]).fetchone()[0]
            approved = f", approved by {issue['approved_by']}" if issue["approved_by"] else ""
            click.echo(f"{issue['week']}  {issue['state']:<8} {count:>3} stories, send at "
                       f"{issue['send_at']}{approved}")

    @digest_group.command("history")
    @_week
    @pass_app
    def history(app, week) -> None:
        """Every curator action on the issue: when, who, what."""
        issue = digest.issue_for_week(app.db, app.config, week)
        for edit in digest.edit_history(app.db, issue["id"]):
            story = f" #{edit['story']}" if edit["story"] is not None else ""
            click.echo(f"{edit['at']}  {edit['by']:<12} {edit['action']}{story} "
                       f"{json.dumps(edit['value'], ensure_ascii=False)}")

    @digest_group.group("edit")
    @_week
    @_by
    @click.pass_context
    def edit(ctx, week, by) -> None:
        """Curate the draft; every change is recorded with who and when and survives a re-draft."""
        ctx.meta["digest_week"] = week
        ctx.meta["digest_by"] = _who(by)

    def _target(ctx, app):
        issue = digest.issue_for_week(app.db, app.config, ctx.meta.get("digest_week"))
        return issue["id"], ctx.meta["digest_by"]

    def _done(app, issue_id, message):
        view = digest.issue_view(app.db, app.config, issue_id)
        click.echo(f"{message} ({view['story_count']} stories in {view['week']}).")

    @edit.command("include")
    @click.argument("story", type=int)
    @click.option("--section", metavar="SLUG")
    @click.pass_context
    def edit_include(ctx, story, section) -> None:
        """Include story #STORY (optionally in SECTION)."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        digest.include_story(app.db, app.config, issue_id, story, by, section=section)
        _done(app, issue_id, f"Included #{story}")

    @edit.command("exclude")
    @click.argument("story", type=int)
    @click.pass_context
    def edit_exclude(ctx, story) -> None:
        """Leave story #STORY out of the issue."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        digest.exclude_story(app.db, app.config, issue_id, story, by)
        _done(app, issue_id, f"Excluded #{story}")

    @edit.command("move")
    @click.argument("story", type=int)
    @click.option("--position", type=click.IntRange(1), required=True, help="New place in its section, from 1.")
    @click.option("--section", metavar="SLUG", help="Move to this section as well.")
    @click.pass_context
    def edit_move(ctx, story, position, section) -> None:
        """Reorder: put story #STORY at --position (in --section)."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        digest.move_story(app.db, app.config, issue_id, story, by, position, section=section)
        _done(app, issue_id, f"Moved #{story} to position {position}")

    @edit.command("section")
    @click.argument("story", type=int)
    @click.argument("section")
    @click.pass_context
    def edit_section(ctx, story, section) -> None:
        """Move story #STORY to another SECTION (at its end)."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        digest.set_section(app.db, app.config, issue_id, story, by, section)
        _done(app, issue_id, f"Moved #{story} to {section}")

    @edit.command("headline")
    @click.argument("story", type=int)
    @click.argument("text")
    @click.pass_context
    def edit_headline(ctx, story, text) -> None:
        """Replace the headline of story #STORY."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        digest.set_headline(app.db, app.config, issue_id, story, by, text)
        _done(app, issue_id, f"New headline for #{story}")

    @edit.command("summary")
    @click.argument("story", type=int)
    @click.argument("text", required=False)
    @click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="Read it from a file.")
    @click.pass_context
    def edit_summary(ctx, story, text, path) -> None:
        """Replace the summary of story #STORY (TEXT or --file)."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        text = Path(path).read_text(encoding="utf-8") if path else text
        if not text:
            raise DigestError("Give the new summary as TEXT or --file PATH.")
        digest.set_summary(app.db, app.config, issue_id, story, by, text)
        _done(app, issue_id, f"New summary for #{story}")

    @edit.command("intro")
    @click.argument("text", required=False)
    @click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="Read it from a file.")
    @click.pass_context
    def edit_intro(ctx, text, path) -> None:
        """Set the editorial intro (blank lines separate paragraphs; empty text removes it)."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        text = Path(path).read_text(encoding="utf-8") if path else (text or "")
        digest.set_intro(app.db, app.config, issue_id, by, text)
        _done(app, issue_id, "Intro updated" if text.strip() else "Intro removed")

    @edit.command("add")
    @click.argument("url")
    @click.option("--section", metavar="SLUG")
    @click.pass_context
    def edit_add(ctx, url, section) -> None:
        """Fetch and extract the article at URL and include it."""
        app = ctx.find_object(_app_type())
        issue_id, by = _target(ctx, app)
        digest.add_url(app.db, app.config, issue_id, url, by, section=section)
        _done(app, issue_id, f"Added {url}")

    @digest_group.command("preview")
    @_week
    @click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="HTML file to write.")
    @click.option("--text", "text_out", type=click.Path(dir_okay=False), help="Also write the text part.")
    @click.option("--web", is_flag=True, help="Write the archive's web version instead of the mail.")
    @click.option("--regions", default="", help="Preview for a subscriber choosing these regions (a,b).")
    @click.option("--topics", default="", help="... and these topics.")
    @pass_app
    def preview(app, week, out, text_out, web, regions, topics) -> None:
        """Write the issue as it will be mailed (or its web version) to a file."""
        from monitor import render

        issue = digest.issue_for_week(app.db, app.config, week)
        if web:
            Path(out).write_text(render.render_web(app.config, app.db, issue["id"]), encoding="utf-8")
            click.echo(f"Wrote the web version of {issue['week']} to {out}.")
            return
        subscriber = None
        if regions or topics:
            subscriber = {"regions": [r for r in regions.split(",") if r],
                          "topics": [t for t in topics.split(",") if t]}
        message = render.render_issue(app.config, app.db, issue["id"], subscriber,
                                      unsubscribe_url=f"{app.config.digest.base_url}/unsubscribe",
                                      preferences_url=f"{app.config.digest.base_url}/preferences")
        Path(out).write_text(message.html, encoding="utf-8")
        if text_out:
            Path(text_out).write_text(message.text, encoding="utf-8")
        size = len(message.html.encode("utf-8"))
        limit = app.config.digest.max_html_bytes
        click.echo(f"Wrote {out}: \"{message.subject}\", {size / 1000:.1f} KB HTML"
                   + (f" - OVER the {limit / 1000:.0f} KB clipping limit" if size > limit else "") + ".")

    @digest_group.command("approve")
    @_week
    @_by
    @click.option("--yes", is_flag=True, help="Confirm a late approval without asking.")
    @pass_app
    def approve(app, week, by, yes) -> None:
        """Approve the draft and freeze its recipients; a late approval asks for confirmation."""
        issue = digest.issue_for_week(app.db, app.config, week)
        late = issue["state"] == "draft" and digest.is_late(app.db, issue["id"])
        if late and not yes and not click.confirm(
                f"The send time of {issue['week']} ({issue['send_at']}) has passed. Approve and send "
                "it as soon as the scheduler runs?", default=False):
            raise DigestError(f"The issue {issue['week']} was not approved.")
        issue = digest.approve_issue(app.db, app.config, issue["id"], _who(by), confirm_late=late)
        click.echo(f"Approved {issue['week']}; it will be sent at {issue['send_at']}"
                   + (" (late: as soon as `monitor run` or `monitor digest send` runs)" if late else "")
                   + ".")

    @digest_group.command("send")
    @_week
    @click.option("--test", "test_address", metavar="ADDRESS", help="Send one test copy to ADDRESS only.")
    @pass_app
    def send(app, week, test_address) -> None:
        """Send the approved issue to its frozen recipients (or --test ADDRESS, any state)."""
        from monitor import outbox

        issue = digest.issue_for_week(app.db, app.config, week)
        if test_address:
            message_id = outbox.send_test(app.db, app.config, issue["id"], test_address)
            click.echo(f"Sent a test copy of {issue['week']} to {test_address} ({message_id}).")
            return
        if issue["state"] == "draft":
            raise DigestError(f"The issue {issue['week']} is a draft: approve it before sending.")
        result = outbox.send_issue(app.db, app.config, issue["id"])
        click.echo(result.summary() if hasattr(result, "summary") else str(result))


def _app_type():
    from monitor.cli import AppContext

    return AppContext
