"""CLI commands for ingest: crawl, run, search, sources."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    pass
