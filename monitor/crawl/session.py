"""State shared by the spiders of one crawl run: the archive, the worker pool, per-source outcomes.

Runs on the reactor thread only. Items are written in small batches, each its own transaction, so
a kill -9 loses at most the unwritten batch, which the next crawl fetches again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from monitor import store
from monitor.config import Config, Source
from monitor.crawl.gate import ExtractionGate
from monitor.urls import canonical_url, url_key

log = logging.getLogger(__name__)

BATCH_SIZE = 25
BATCH_SECONDS = 1.0


@dataclass
class SourceOutcome:
    name: str
    new: int = 0
    seen: int = 0
    unchanged: bool = False
    error: str | None = None  # the listing (feed/page/sitemap) failed: a sentence
    warnings: list[str] = field(default_factory=list)
    page_errors: int = 0
    item_ids: list[int] = field(default_factory=list)
    validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None

    def line(self) -> str:
        if self.error:
            return f"{self.name}: failed: {self.error}"
        parts = [f"{self.new} new", f"{self.seen} already seen"]
        if self.unchanged:
            parts = ["unchanged since the last crawl"]
        if self.page_errors:
            parts.append(f"{self.page_errors} article page(s) not fetched (stored from the feed)")
        line = f"{self.name}: " + ", ".join(parts)
        if self.warnings:
            line += f" (warning: {self.warnings[0]})"
        return line


class CrawlSession:
    def __init__(self, config: Config, db, pool, progress=None):
        self.config = config
        self.db = db
        self.pool = pool
        # Article pages in flight in the whole crawl, downloading or waiting to be extracted.
        self.gate = ExtractionGate(config.crawl.concurrency)
        self.progress = progress
        self.outcomes: dict[str, SourceOutcome] = {}
        self._claimed: set[str] = set()
        self._also_from: dict[str, set[str]] = {}  # claimed url key -> other sources carrying it
        self._buffer: list[dict] = []
        self._last_flush = time.monotonic()
        self._untagged: list[int] = []
        self._warm: threading.Thread | None = None
        self._finished: set[str] = set()

    def outcome(self, source: Source) -> SourceOutcome:
        return self.outcomes.setdefault(source.name, SourceOutcome(source.name))

    # -- dedupe -----------------------------------------------------------------------------

    @staticmethod
    def keys_for(*urls: str | None) -> list[str]:
        keys = []
        for url in urls:
            if url:
                key = url_key(url)
                if key and key not in keys:
                    keys.append(key)
        return keys

    def claim(self, keys: list[str]) -> bool:
        """True if nobody in this run or the archive has these URLs yet; then they are ours."""
        if any(k in self._claimed for k in keys):
            return False
        if store.known_items(self.db, keys):
            return False
        self._claimed.update(keys)
        self._warm_tagging()
        return True

    def record_seen_elsewhere(self, source: Source, keys: list[str]) -> None:
        """An item already archived reached us through another source: remember that source."""
        known = store.known_items(self.db, keys)
        if known:
            self._add_source(next(iter(known.values())), source.name)
            return
        for key in keys:  # claimed earlier in this run and not written yet
            if key in self._claimed:
                self._also_from.setdefault(key, set()).add(source.name)
                return

    def _add_source(self, item_id: int, source_name: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO item_sources (item_id, source, first_seen) VALUES (?, ?, ?)",
            [item_id, source_name, store.now_iso()])

    # -- conditional GET ---------------------------------------------------------------------

    def validators(self, url: str) -> dict:
        return store.http_validators(self.db, url)

    def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        store.save_http_validators(self.db, url, etag, last_modified)

    # -- errors ------------------------------------------------------------------------------

    def log_error(self, source: Source, url: str, sentence: str) -> None:
        store.log_fetch_error(self.db, source.name, url, sentence)

    # -- items -------------------------------------------------------------------------------

    def add_item(self, item: dict) -> None:
        item["url"] = canonical_url(item["url"]) or item["url"]
        self._buffer.append(item)
        if len(self._buffer) >= BATCH_SIZE or time.monotonic() - self._last_flush > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        results = store.save_items(self.db, batch)
        for item, (item_id, _) in zip(batch, results, strict=True):
            for key in item.get("url_keys", ()):
                for other in self._also_from.pop(key, ()):
                    self._add_source(item_id, other)
        new_ids = []
        for item, (item_id, is_new) in zip(batch, results, strict=True):
            outcome = self.outcomes.setdefault(item["source"], SourceOutcome(item["source"]))
            if is_new:
                outcome.new += 1
                outcome.item_ids.append(item_id)
                new_ids.append(item_id)
            else:
                outcome.seen += 1
        self._untagged += new_ids + [i for item, (i, new) in zip(batch, results, strict=True)
                                     if not new and item.get("full_text")]
        self._tag_pending()
        if self.progress:
            self.progress.items_saved(len(batch))

    def _warm_tagging(self) -> None:
        """Import tagging and load its models in a thread once there is something new to tag.

        Done on the reactor thread at the first flush, this blocked downloads for seconds (tens of
        seconds on a loaded machine: enough for in-flight pages to time out). A crawl with nothing
        new never pays it.
        """
        if self._warm is None:
            self._warm = threading.Thread(target=_warm_tagging, args=(self.config,),
                                          name="tagging-warm-up", daemon=True)
            self._warm.start()

    def _tag_pending(self, wait: bool = False) -> None:
        """Tag what was stored; until the warm-up is done only when `wait` (the last source)."""
        if self._warm is not None and self._warm.is_alive():
            if not (wait and self._untagged):
                return
            self._warm.join()
        ids, self._untagged = self._untagged, []
        self._tag(ids)

    def _tag(self, item_ids: list[int]) -> None:
        if not item_ids:
            return
        try:
            from monitor import tagging
        except ImportError:
            return
        process = getattr(tagging, "process_items", None)
        if process is None:
            return
        try:
            process(self.db, self.config, item_ids)
        except Exception:
            # The items are stored already; untagged ones (tagged_at NULL) are picked up by
            # `monitor retag`. A tagging bug must not cost the crawl or the source's health.
            log.exception("tagging %d item(s) failed; run `monitor retag`", len(item_ids))

    def finish_source(self, source: Source) -> SourceOutcome:
        outcome = self.outcome(source)
        try:
            self.flush()
            self._finished.add(source.name)
            self._tag_pending(wait=self._finished >= set(self.outcomes))
        except Exception as exc:  # e.g. the disk is full: say so in the source's health
            log.exception("storing items failed")
            outcome.error = outcome.error or f"Storing the items failed ({exc})."
        warning = None
        if outcome.warnings:
            warning = outcome.warnings[0]
        elif outcome.page_errors:
            warning = (f"{outcome.page_errors} article page(s) could not be fetched; "
                       "their items were stored from the feed (see fetch_log).")
        if outcome.error is None:
            for url, (etag, last_modified) in outcome.validators.items():
                self.save_validators(url, etag, last_modified)
        store.record_source_result(self.db, source.name, outcome.error, outcome.new, outcome.seen,
                                   warning=warning)
        if self.progress:
            self.progress.source_done(outcome)
        return outcome


def _warm_tagging(config: Config) -> None:
    try:
        from monitor import tagging
        from monitor.language import detect_language

        detect_language("Warming up the language model before the first batch is tagged.", None,
                        config.taxonomy.settings.languages)
        tagging.matcher_for(config.taxonomy)
        from monitor import cluster_store  # noqa: F401  (and clustering, which it imports)
    except Exception:  # only a head start: the first real tagging call reports any problem
        log.debug("tagging warm-up failed", exc_info=True)
