"""`monitor serve`, `monitor users ...` and `monitor datasette`: the web desk's commands.

Thin wrappers over monitor.web.app, monitor.web.auth and the Datasette metadata built here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from monitor.errors import MonitorError


def register(cli: click.Group) -> None:
    from monitor.cli import pass_app

    @cli.command("serve")
    @click.option("--host", default=None, help="Address to listen on (default: [web] host).")
    @click.option("--port", type=int, default=None, help="Port (default: [web] port).")
    @click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="uvicorn worker processes (default: [web] workers).",
    )
    @pass_app
    def serve(app, host: str | None, port: int | None, workers: int | None) -> None:
        """Run the web desk (uvicorn) on [web] host and port."""
        import uvicorn

        config = app.config
        host = host or config.web.host
        port = port or config.web.port
        workers = workers or config.web.workers
        if workers > 1 and not os.environ.get(config.web.secret_env):
            # Each worker would otherwise read the same generated secret; that is fine, but say so.
            click.echo(
                f"Note: {config.web.secret_env} is not set; using the secret kept in the archive.",
                err=True,
            )
        click.echo(f"Serving the web desk on http://{host}:{port}/ (Ctrl+C to stop)")
        if workers > 1:
            os.environ["MONITOR_CONFIG"] = str(config.path)
            uvicorn.run(
                "monitor.web.asgi:app",
                host=host,
                port=port,
                workers=workers,
                log_level="info",
                proxy_headers=True,
                server_header=False,
            )
        else:
            from monitor.web.app import create_app

            uvicorn.run(
                create_app(config),
                host=host,
                port=port,
                log_level="info",
                proxy_headers=True,
                server_header=False,
            )

    @cli.group("users")
    def users() -> None:
        """Web desk accounts: add, passwd, remove, list."""

    @users.command("add")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["admin", "curator", "analyst"]), required=True)
    @click.option("--email", default=None, help="Where saved-search mails go.")
    @click.option(
        "--password",
        default=None,
        envvar="MONITOR_NEW_PASSWORD",
        help="Password (default: asked for; or $MONITOR_NEW_PASSWORD).",
    )
    @pass_app
    def users_add(app, username: str, role: str, email: str | None, password: str | None) -> None:
        """Create an account."""
        from monitor.web import auth

        password = password or click.prompt("Password", hide_input=True, confirmation_prompt=True)
        user = auth.add_user(app.db, username, password, role, email)
        click.echo(f"Added {user.username} ({user.role}).")

    @users.command("passwd")
    @click.argument("username")
    @click.option(
        "--password",
        default=None,
        envvar="MONITOR_NEW_PASSWORD",
        help="New password (default: asked for; or $MONITOR_NEW_PASSWORD).",
    )
    @pass_app
    def users_passwd(app, username: str, password: str | None) -> None:
        """Set a new password (signs the user out everywhere)."""
        from monitor.web import auth

        if not auth.find_user(app.db, username):
            raise MonitorError(f"There is no user {username!r}.")
        password = password or click.prompt(
            "New password", hide_input=True, confirmation_prompt=True
        )
        auth.set_password(app.db, username, password)
        click.echo(f"Changed the password of {username}; their sessions were ended.")

    @users.command("remove")
    @click.argument("username")
    @pass_app
    def users_remove(app, username: str) -> None:
        """Delete an account and its sessions and saved searches."""
        from monitor.web import auth

        auth.remove_user(app.db, username)
        click.echo(f"Removed {username}.")

    @users.command("list")
    @pass_app
    def users_list(app) -> None:
        """Show accounts, roles and last sign-in."""
        from monitor.web import auth

        rows = auth.list_users(app.db)
        if not rows:
            click.echo("No accounts yet. Add one with: monitor users add NAME --role admin")
        for row in rows:
            click.echo(
                f"{row['username']:<24} {row['role']:<8} last sign-in: "
                f"{row['last_login'] or 'never'}"
            )

    @cli.command("datasette")
    @click.option("--port", type=int, default=8001, show_default=True)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option(
        "--metadata-out",
        type=click.Path(dir_okay=False),
        default=None,
        help="Only write the metadata JSON to this file and exit.",
    )
    @click.option(
        "--sql/--no-sql",
        default=False,
        show_default=True,
        help="Allow arbitrary SQL (it can read every table, account tables included).",
    )
    @pass_app
    def datasette_cmd(app, port: int, host: str, metadata_out: str | None, sql: bool) -> None:
        """Open the archive in Datasette with facets and full-text search configured."""
        config = app.config
        app.db  # migrations and sources are up to date before Datasette opens the file
        metadata = datasette_metadata(config, allow_sql=sql)
        if metadata_out:
            Path(metadata_out).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
            click.echo(f"Wrote {metadata_out}.")
            return
        exe = shutil.which("datasette") or str(Path(sys.executable).with_name("datasette"))
        if not Path(exe).exists():
            raise MonitorError(
                "Datasette is not installed: pip install 'border-news-monitor[datasette]'."
            )
        meta_path = config.storage.database.with_suffix(".datasette.json")
        meta_path.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        args = [
            exe,
            "serve",
            str(config.storage.database),
            "--metadata",
            str(meta_path),
            "--host",
            host,
            "--port",
            str(port),
            "--setting",
            "sql_time_limit_ms",
            "3000",
            "--setting",
            "facet_time_limit_ms",
            "1000",
        ]
        click.echo(f"Opening {config.storage.database} in Datasette on http://{host}:{port}/")
        os.execv(exe, args)


PRIVATE_TABLES = (
    "web_users",
    "web_sessions",
    "web_login_attempts",
    "web_settings",
    "saved_searches",
    "subscribers",
)


def datasette_metadata(config, allow_sql: bool = False) -> dict:
    """Datasette metadata: facets and full-text search on items; account tables not shown."""
    name = config.storage.database.stem
    private = {table: {"hidden": True, "allow": False} for table in PRIVATE_TABLES}
    return {
        "title": f"{config.digest.title}: archive",
        "description": "Border news gathered by the monitor. Tables are documented in docs/database.md.",
        "databases": {
            name: {
                "allow_sql": allow_sql,
                "tables": {
                    "items": {
                        "description": "One row per article (canonical URL).",
                        "fts_table": "items_fts",
                        "fts_pk": "id",
                        "searchmode": "raw",
                        "facets": ["source", "language", "relevant"],
                        "sort_desc": "published",
                        "label_column": "title",
                        "size": 50,
                    },
                    "item_tags": {
                        "description": "Region and topic tags with their evidence (JSON).",
                        "facets": ["kind", "tag"],
                    },
                    "item_sources": {"facets": ["source"]},
                    "sources": {
                        "description": "Source health.",
                        "sort": "name",
                        "facets": ["kind", "language", "consecutive_failures"],
                    },
                    "fetch_log": {
                        "description": "Failed fetches and parses.",
                        "facets": ["source"],
                        "sort_desc": "at",
                    },
                    **private,
                },
            }
        },
    }
