"""The `monitor` command line: one click group; each area adds its commands from its own module.

Errors the user can act on (MonitorError) are printed as one sentence with a non-zero exit,
never as a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from monitor.config import Config, load_config
from monitor.errors import ConfigError, MonitorError


class AppContext:
    """Carries --config to subcommands; the file is loaded and validated once, on first use."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._config: Config | None = None
        self._db = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def db(self):
        if self._db is None:
            from monitor.store import open_db, sync_sources

            self._db = open_db(self.config.storage.database)
            sync_sources(self._db, self.config.sources)
        return self._db


pass_app = click.make_pass_decorator(AppContext)


@click.group()
@click.option("--config", "config_path", metavar="PATH", envvar=None,
              help="Config file (default: $MONITOR_CONFIG, else ./config.toml).")
@click.version_option(package_name="border-news-monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Border-news monitor: crawl, tag, search and mail the weekly digest."""
    ctx.obj = AppContext(config_path)


@cli.command("check-config")
@pass_app
def check_config(app: AppContext) -> None:
    """Validate the config file and exit (non-zero when invalid)."""
    config = app.config
    click.echo(f"{config.path}: valid ({len(config.sources)} sources, "
               f"{len(config.taxonomy.regions)} regions, {len(config.taxonomy.topics)} topics).")


def _register_area_commands() -> None:
    from monitor import cli_ingest

    cli_ingest.register(cli)
    for module_name in ("monitor.cli_tags", "monitor.cli_digest", "monitor.cli_web",
                        "monitor.cli_subscribers"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(cli)


_register_area_commands()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="monitor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"Invalid configuration: {exc}", err=True)
        sys.exit(2)
    except MonitorError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one sentence; the traceback only on request
        if os.environ.get("MONITOR_DEBUG"):
            raise
        click.echo(f"Unexpected error ({type(exc).__name__}: {exc}). This is a bug in the monitor; "
                   "run again with MONITOR_DEBUG=1 to see the details.", err=True)
        sys.exit(70)
