"""Progress display for `monitor crawl` on a terminal (rich); silent when output is not a TTY."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class CrawlProgress:
    def __init__(self, total_sources: int, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.items = 0
        self.progress = Progress(
            TextColumn("[bold]Crawling"), BarColumn(), MofNCompleteColumn(),
            TextColumn("sources · {task.fields[items]} items saved"), TimeElapsedColumn(),
            console=self.console, transient=True)
        self.task = self.progress.add_task("crawl", total=total_sources, items=0)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def items_saved(self, count: int) -> None:
        self.items += count
        self.progress.update(self.task, items=self.items)

    def source_done(self, outcome) -> None:
        self.progress.advance(self.task)
