"""CLI commands for ingest: crawl, run, search, sources (and the internal fetch-url)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import click

from monitor import store


def _since(value: str | None) -> str | None:
    """--since accepts 2026-11-01, 2026-11-01T10:00, or a duration such as 7d / 12h."""
    if not value:
        return None
    from monitor.config import parse_duration

    try:
        return (datetime.now(UTC) - timedelta(seconds=parse_duration(value))).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-11-01) or a duration (7d)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(cli: click.Group) -> None:
    from monitor.cli import AppContext, pass_app

    @cli.command()
    @click.option("--source", "names", multiple=True, metavar="NAME",
                  help="Crawl only this source (repeatable). Default: every enabled source.")
    @click.option("--quiet", is_flag=True, help="No progress display.")
    @click.option("--verbose", is_flag=True, help="Show Scrapy's log.")
    @pass_app
    def crawl(app: AppContext, names: tuple[str, ...], quiet: bool, verbose: bool) -> None:
        """Crawl sources once and print one line per source (new, already seen, failed).

        Exits 0 when the config is valid, even if some sources failed: failures are recorded in
        the sources table and fetch_log.
        """
        from monitor.crawl.runner import run_sources, select_sources
        from monitor.workers import load_worker_server, stop_worker_server

        load_worker_server()  # it loads while the config and Scrapy do (run_sources)
        try:
            config = app.config
            sources = select_sources(config, names)
        except BaseException:
            stop_worker_server()
            raise
        if not sources:
            stop_worker_server()
            click.echo("No enabled sources to crawl.")
            return
        progress = None
        if sys.stderr.isatty() and not quiet:
            from monitor.crawl.progress import CrawlProgress

            progress = CrawlProgress(len(sources))
        # Our own one-line-per-source report replaces Scrapy's log unless asked for.
        log_level = "INFO" if verbose else "CRITICAL"
        if progress:
            with progress:
                outcomes = run_sources(config, sources, progress, log_level)
        else:
            outcomes = run_sources(config, sources, None, log_level)
        for outcome in outcomes:
            click.echo(outcome.line())
        new = sum(o.new for o in outcomes)
        failed = sum(1 for o in outcomes if o.failed)
        click.echo(f"Done: {len(outcomes)} source(s), {new} new item(s), {failed} failed.")

    @cli.command("fetch-url", hidden=True)
    @click.option("--source", "source_name", default="manual")
    @click.argument("url")
    @pass_app
    def fetch_url(app: AppContext, source_name: str, url: str) -> None:
        """Internal: fetch one article (used by `digest edit --add-url`); prints JSON."""
        from monitor.config import Source
        from monitor.crawl.runner import run_sources
        from monitor.crawl.session import CrawlSession

        known = store.known_items(app.db, CrawlSession.keys_for(url))
        if known:
            click.echo(json.dumps({"item_id": next(iter(known.values())), "new": False}))
            return
        source = Source(name=source_name, url=url, kind="article", full_text=True)
        outcome = run_sources(app.config, [source], None, "CRITICAL")[0]
        if outcome.item_ids:
            click.echo(json.dumps({"item_id": outcome.item_ids[0], "new": True}))
            return
        known = store.known_items(app.db, CrawlSession.keys_for(url))
        if known:
            click.echo(json.dumps({"item_id": next(iter(known.values())), "new": False}))
            return
        click.echo(json.dumps({"error": outcome.error or f"No article could be read from {url}."}))

    @cli.command()
    @click.option("--once", is_flag=True, help="Run every due job once, then exit.")
    @pass_app
    def run(app: AppContext, once: bool) -> None:
        """The long-lived scheduler: crawls each source at its `every` (each in its own process)."""
        from monitor.scheduler import run_scheduler

        run_scheduler(app.config, once=once)

    @cli.command()
    @click.argument("query")
    @click.option("--source", "sources", multiple=True, metavar="NAME", help="Only these sources.")
    @click.option("--since", metavar="DATE|DURATION", help="Published since (2026-11-01 or 7d).")
    @click.option("--limit", default=20, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
    @pass_app
    def search(app: AppContext, query: str, sources, since, limit, as_json) -> None:
        """Full-text search: words, "phrases", prefix*, OR, NOT / -word."""
        rows = store.search_items(app.db, query, sources=sources, since=_since(since), limit=limit)
        if as_json:
            for row in rows:
                click.echo(json.dumps(row, ensure_ascii=False))
            return
        if not rows:
            click.echo("No items match.")
            return
        for row in rows:
            date = (row["published"] or row["fetched_at"] or "")[:10]
            click.echo(f"[{row['id']}] {date} {row['source']}: {row['title']}")
            click.echo(f"    {row['url']}")
            if row.get("snippet"):
                click.echo(f"    {row['snippet']}")

    @cli.command()
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    def sources(app: AppContext, as_json: bool) -> None:
        """Source health: last success, last error, consecutive failures, items in 7 days."""
        rows = store.source_health(app.db)
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
            return
        for row in rows:
            state = "ok" if not row["consecutive_failures"] else f"{row['consecutive_failures']} failure(s)"
            if row["last_success"] is None and row["last_error"] is None:
                state = "never crawled"
            click.echo(f"{row['name']:<32} {row['kind']:<8} {state:<16} "
                       f"7d: {row['items_last_7_days']:>4}  last ok: {row['last_success'] or '-'}")
            if row["last_error"]:
                click.echo(f"    last error ({row['last_error_at']}): {row['last_error']}")

    @cli.command()
    @click.option("--port", default=0, help="Port for the local demo server (default: any free).")
    @click.option("--keep", is_flag=True, help="Keep the demo data folder from a previous run.")
    def demo(port: int, keep: bool) -> None:
        """Run the whole pipeline on the bundled offline snapshot (no internet needed)."""
        from monitor.demo import run_demo

        run_demo(port=port, keep=keep)
