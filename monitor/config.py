"""Loads config.toml into frozen dataclasses, validated once at start, then passed down explicitly.

Every problem becomes a ConfigError naming the file, the key and what is wrong. No module reads the
file or the environment behind the caller's back: they receive a Config (or one of its sections).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import ConfigError

SOURCE_KINDS = ("feed", "page", "sitemap")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_duration(text: str) -> float:
    """'30m' -> 1800.0; raises ValueError with a readable message."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a duration such as '45s', '30m', '6h', '1d' or '1w'")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


@dataclass(frozen=True)
class StorageConfig:
    database: Path


@dataclass(frozen=True)
class CrawlConfig:
    user_agent: str = "BorderNewsMonitor/0.1 (+https://github.com/border-news-monitor)"
    delay: float = 1.0
    concurrency_per_host: int = 2
    concurrency: int = 16
    timeout: float = 30.0
    max_bytes: int = 10_000_000
    retries: int = 2
    obey_robots: bool = True
    allow_hosts: tuple[str, ...] = ()
    only_allow_hosts: bool = False  # fetch nothing but allow_hosts (tests, the offline demo)
    extract_workers: int = 2
    parse_timeout: float = 20.0
    source_time_limit: float = 900.0
    source_memory_mb: int = 1536
    max_items_per_source: int = 5000


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    kind: str = "feed"
    language: str | None = None
    every: float = 3600.0
    full_text: bool = True
    link_selector: str | None = None
    weight: float = 1.0
    regions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    enabled: bool = True
    relevant: bool = False  # every item is about migration (NGO and agency sources)


@dataclass(frozen=True)
class DigestSection:
    slug: str
    title: str
    regions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    max_items: int = 10


@dataclass(frozen=True)
class DigestConfig:
    title: str = "Border Monitor Weekly"
    timezone: str = "Europe/Brussels"
    draft_day: str = "thursday"
    draft_time: str = "08:00"
    send_day: str = "friday"
    send_time: str = "10:00"
    list_id: str = "weekly.border-monitor.invalid"
    base_url: str = "http://127.0.0.1:8080"
    sections: tuple[DigestSection, ...] = ()
    templates: Path | None = None  # folder of newsletter templates; None = the bundled ones
    max_html_bytes: int = 102_000  # Gmail clips larger messages


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  # none | starttls | tls
    user: str | None = None
    password_env: str = "MONITOR_SMTP_PASSWORD"
    from_address: str = "digest@border-monitor.invalid"
    from_name: str = "Border Monitor"
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    rate_limit: float = 0.0  # messages per second, 0 = unlimited
    timeout: float = 30.0
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    max_attempts: int = 6  # tries per recipient on 4xx answers before it is marked failed
    retry_backoff: float = 60.0  # first wait after a 4xx; doubles on each further attempt
    ca_file: Path | None = None  # extra CA bundle to trust for STARTTLS/TLS (private relays)
    confirm_limit: float = 86400.0  # at most one confirmation mail per address in this period


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    session_max_age: float = 12 * 3600.0
    secret_env: str = "MONITOR_SECRET_KEY"
    workers: int = 2  # uvicorn worker processes for `monitor serve` (one per core on 2 cores)


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    storage: StorageConfig
    crawl: CrawlConfig
    sources: tuple[Source, ...]
    taxonomy: Any  # monitor.taxonomy.Taxonomy
    digest: DigestConfig
    smtp: SmtpConfig
    web: WebConfig
    raw: dict = field(repr=False, default_factory=dict)

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


def find_config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config PATH, else $MONITOR_CONFIG, else ./config.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get("MONITOR_CONFIG"):
        return Path(os.environ["MONITOR_CONFIG"])
    return Path("config.toml")


def load_config(explicit: str | os.PathLike | None = None) -> Config:
    path = find_config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", "the config file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"the config file cannot be read ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    return parse_config(raw, path)


class _Reader:
    """Typed access to one table of the TOML document, raising ConfigError with the full key."""

    def __init__(self, path: Path, table: Any, prefix: str):
        self.path = path
        self.prefix = prefix
        if not isinstance(table, dict):
            raise ConfigError(path, prefix, "must be a table")
        self.table = table

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), message)

    def only(self, allowed: set[str]) -> None:
        for name in self.table:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(name, f"unknown key (known keys: {known})")

    def get(self, name: str, types: type | tuple, default: Any = None, required=False) -> Any:
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.table[name]
        if types is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and types in (int, float):
            raise self.fail(name, f"must be a number, not {value!r}")
        if not isinstance(value, types):
            wanted = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
            raise self.fail(name, f"must be a {_toml_type(wanted)}, not {value!r}")
        return value

    def text(self, name: str, default: str | None = None, required=False) -> str | None:
        value = self.get(name, str, default, required)
        if required and not str(value).strip():
            raise self.fail(name, "must not be empty")
        return value

    def number(self, name: str, default: float, minimum: float | None = None) -> float:
        value = self.get(name, float, default)
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum:g}, not {value:g}")
        return value

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        value = self.get(name, int, default)
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum}, not {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self.get(name, bool, default)

    def strings(self, name: str, default: tuple = ()) -> tuple[str, ...]:
        value = self.get(name, list, list(default))
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(self.path, f"{self.key(name)}[{i}]", f"must be a string, not {item!r}")
        return tuple(value)

    def duration(self, name: str, default: float) -> float:
        value = self.table.get(name)
        if value is None:
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise self.fail(name, str(exc)) from None
        if seconds <= 0:
            raise self.fail(name, "must be longer than zero")
        return seconds

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def sub(self, name: str) -> _Reader:
        return _Reader(self.path, self.table.get(name, {}), self.key(name))


def _toml_type(name: str) -> str:
    return {"str": "string", "int": "whole number", "float": "number", "bool": "true or false",
            "list": "list", "dict": "table"}.get(name, name)


TOP_LEVEL_KEYS = {"storage", "crawl", "sources", "regions", "topics", "tagging", "digest", "smtp",
                  "web"}


def parse_config(raw: dict, path: Path) -> Config:
    path = Path(path)
    root = path.resolve().parent
    top = _Reader(path, raw, "")
    top.only(TOP_LEVEL_KEYS)

    storage = top.sub("storage")
    storage.only({"database"})
    database_text = storage.text("database", "data/monitor.db")
    if not database_text.strip():
        raise storage.fail("database", "must be the path of the archive file, such as 'data/monitor.db'")
    database = Path(database_text)
    if not database.is_absolute():
        database = root / database

    crawl = _parse_crawl(top.sub("crawl"))
    sources = _parse_sources(path, raw.get("sources", []))

    from monitor.taxonomy import parse_taxonomy

    taxonomy = parse_taxonomy(raw, path)
    _check_source_tags(path, sources, taxonomy)
    digest = _parse_digest(top.sub("digest"), taxonomy)
    smtp = _parse_smtp(top.sub("smtp"), root)
    web = _parse_web(top.sub("web"))
    return Config(path=path, root=root, storage=StorageConfig(database), crawl=crawl,
                  sources=sources, taxonomy=taxonomy, digest=digest, smtp=smtp, web=web, raw=raw)


def _parse_crawl(r: _Reader) -> CrawlConfig:
    d = CrawlConfig()
    r.only({"user_agent", "delay", "concurrency_per_host", "concurrency", "timeout", "max_bytes",
            "retries", "obey_robots", "allow_hosts", "only_allow_hosts", "extract_workers",
            "parse_timeout", "source_time_limit", "source_memory_mb", "max_items_per_source"})
    allow = r.strings("allow_hosts")
    for i, host in enumerate(allow):
        if not host.strip() or "/" in host and not _is_network(host):
            raise ConfigError(r.path, f"crawl.allow_hosts[{i}]", f"{host!r} is not a host, IP or network")
    return CrawlConfig(
        user_agent=r.text("user_agent", d.user_agent),
        delay=r.number("delay", d.delay, 0),
        concurrency_per_host=r.integer("concurrency_per_host", d.concurrency_per_host, 1),
        concurrency=r.integer("concurrency", d.concurrency, 1),
        timeout=r.duration("timeout", d.timeout),
        max_bytes=r.integer("max_bytes", d.max_bytes, 1024),
        retries=r.integer("retries", d.retries, 0),
        obey_robots=r.boolean("obey_robots", d.obey_robots),
        allow_hosts=tuple(h.strip().lower() for h in allow),
        only_allow_hosts=r.boolean("only_allow_hosts", d.only_allow_hosts),
        extract_workers=r.integer("extract_workers", d.extract_workers, 1),
        parse_timeout=r.duration("parse_timeout", d.parse_timeout),
        source_time_limit=r.duration("source_time_limit", d.source_time_limit),
        source_memory_mb=r.integer("source_memory_mb", d.source_memory_mb, 128),
        max_items_per_source=r.integer("max_items_per_source", d.max_items_per_source, 1),
    )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


SOURCE_KEYS = {"name", "url", "kind", "language", "every", "full_text", "link_selector", "weight",
               "regions", "topics", "enabled", "relevant"}


def _parse_sources(path: Path, raw_sources: Any) -> tuple[Source, ...]:
    if not isinstance(raw_sources, list):
        raise ConfigError(path, "sources", "must be a list of [[sources]] tables")
    seen: set[str] = set()
    sources = []
    for i, table in enumerate(raw_sources):
        r = _Reader(path, table, f"sources[{i}]")
        name = r.text("name", required=True)
        r = _Reader(path, table, f"sources[{i}] ({name})")
        r.only(SOURCE_KEYS)
        if not _SLUG.match(name):
            raise r.fail("name", f"{name!r} must be a slug: lowercase letters, digits, - and _")
        if name in seen:
            raise r.fail("name", f"{name!r} is used by another source; names must be unique")
        seen.add(name)
        url = r.text("url", required=True)
        if not re.match(r"^https?://[^/\s]+", url):
            raise r.fail("url", f"{url!r} must be an http:// or https:// address")
        kind = r.choice("kind", SOURCE_KINDS, "feed")
        link_selector = r.text("link_selector")
        if kind == "page" and not link_selector:
            raise r.fail("link_selector", "is required for a 'page' source (a CSS selector for article links)")
        language = r.text("language")
        if language is not None and not re.match(r"^[a-z]{2}$", language):
            raise r.fail("language", f"{language!r} must be a two-letter ISO 639-1 code such as 'nl'")
        sources.append(Source(
            name=name, url=url, kind=kind, language=language,
            every=r.duration("every", 3600.0), full_text=r.boolean("full_text", True),
            link_selector=link_selector, weight=r.number("weight", 1.0, 0),
            regions=r.strings("regions"), topics=r.strings("topics"),
            enabled=r.boolean("enabled", True), relevant=r.boolean("relevant", False),
        ))
    return tuple(sources)


def _check_source_tags(path: Path, sources: tuple[Source, ...], taxonomy: Any) -> None:
    for i, source in enumerate(sources):
        for kind, slugs in (("regions", source.regions), ("topics", source.topics)):
            known = taxonomy.regions if kind == "regions" else taxonomy.topics
            for slug in slugs:
                if slug not in known:
                    raise ConfigError(path, f"sources[{i}] ({source.name}).{kind}",
                                      f"{slug!r} is not a configured {kind[:-1]}")


def _clock(r: _Reader, name: str, default: str) -> str:
    value = r.text(name, default)
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
        raise r.fail(name, f"{value!r} must be a time of day such as '09:30'")
    return value


def _parse_digest(r: _Reader, taxonomy: Any) -> DigestConfig:
    d = DigestConfig()
    r.only({"title", "timezone", "draft_day", "draft_time", "send_day", "send_time", "list_id",
            "base_url", "sections", "templates", "max_html_bytes"})
    timezone = r.text("timezone", d.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("timezone", f"{timezone!r} is not a known time zone such as 'Europe/Brussels'") from None
    raw_sections = r.get("sections", list, [])
    sections = []
    seen = set()
    for i, table in enumerate(raw_sections):
        s = _Reader(r.path, table, f"digest.sections[{i}]")
        s.only({"slug", "title", "regions", "topics", "max"})
        title = s.text("title", required=True)
        slug = s.text("slug") or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        if slug in seen:
            raise s.fail("slug", f"{slug!r} is used by another section")
        seen.add(slug)
        regions, topics = s.strings("regions"), s.strings("topics")
        for kind, slugs, known in (("regions", regions, taxonomy.regions),
                                   ("topics", topics, taxonomy.topics)):
            for tag in slugs:
                if tag not in known:
                    raise s.fail(kind, f"{tag!r} is not a configured {kind[:-1]}")
        sections.append(DigestSection(slug=slug, title=title, regions=regions, topics=topics,
                                      max_items=s.integer("max", 10, 1)))
    base_url = r.text("base_url", d.base_url).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise r.fail("base_url", f"{base_url!r} must be an http:// or https:// address")
    draft_day = r.choice("draft_day", WEEKDAYS, d.draft_day)
    send_day = r.choice("send_day", WEEKDAYS, d.send_day)
    if (WEEKDAYS.index(draft_day), _clock(r, "draft_time", d.draft_time)) >= \
            (WEEKDAYS.index(send_day), _clock(r, "send_time", d.send_time)):
        raise r.fail("draft_day", "the draft must come before the send time in the same ISO week "
                                  "(draft_day/draft_time before send_day/send_time)")
    return DigestConfig(
        title=r.text("title", d.title), timezone=timezone,
        draft_day=r.choice("draft_day", WEEKDAYS, d.draft_day), draft_time=_clock(r, "draft_time", d.draft_time),
        send_day=r.choice("send_day", WEEKDAYS, d.send_day), send_time=_clock(r, "send_time", d.send_time),
        list_id=r.text("list_id", d.list_id), base_url=base_url, sections=tuple(sections),
        templates=_digest_templates(r), max_html_bytes=r.integer("max_html_bytes", d.max_html_bytes, 1000),
    )


def _digest_templates(r: _Reader) -> Path | None:
    value = r.text("templates")
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        path = r.path.resolve().parent / path
    if not path.is_dir():
        raise r.fail("templates", f"{str(path)!r} is not a folder of newsletter templates")
    return path


def _parse_smtp(r: _Reader, root: Path) -> SmtpConfig:
    d = SmtpConfig()
    r.only({"host", "port", "security", "user", "password_env", "from_address", "from_name",
            "reply_to", "unsubscribe_mailto", "rate_limit", "timeout", "dkim_key_file",
            "dkim_selector", "dkim_domain", "max_attempts", "retry_backoff", "ca_file",
            "confirm_limit"})
    key_file = r.text("dkim_key_file")
    key_path = None
    if key_file:
        key_path = Path(key_file) if Path(key_file).is_absolute() else root / key_file
    from_address = r.text("from_address", d.from_address)
    if "@" not in from_address or any(c in from_address for c in "\r\n <>"):
        raise r.fail("from_address", f"{from_address!r} is not an email address")
    dkim_selector, dkim_domain = r.text("dkim_selector"), r.text("dkim_domain")
    if key_path and not (dkim_selector and dkim_domain):
        raise r.fail("dkim_key_file", "needs dkim_selector and dkim_domain as well")
    return SmtpConfig(
        host=r.text("host", d.host), port=r.integer("port", d.port, 1),
        security=r.choice("security", ("none", "starttls", "tls"), d.security),
        user=r.text("user"), password_env=r.text("password_env", d.password_env),
        from_address=from_address, from_name=r.text("from_name", d.from_name),
        reply_to=r.text("reply_to"), unsubscribe_mailto=r.text("unsubscribe_mailto"),
        rate_limit=r.number("rate_limit", d.rate_limit, 0), timeout=r.duration("timeout", d.timeout),
        dkim_key_file=key_path, dkim_selector=dkim_selector, dkim_domain=dkim_domain,
        max_attempts=r.integer("max_attempts", d.max_attempts, 1),
        retry_backoff=r.duration("retry_backoff", d.retry_backoff),
        ca_file=(root / r.text("ca_file")) if r.text("ca_file") else None,
        confirm_limit=r.duration("confirm_limit", d.confirm_limit),
    )


def _parse_web(r: _Reader) -> WebConfig:
    d = WebConfig()
    r.only({"host", "port", "base_url", "session_max_age", "secret_env", "workers"})
    base_url = r.text("base_url", d.base_url).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise r.fail("base_url", f"{base_url!r} must be an http:// or https:// address")
    return WebConfig(host=r.text("host", d.host), port=r.integer("port", d.port, 1),
                     base_url=base_url, session_max_age=r.duration("session_max_age", d.session_max_age),
                     secret_env=r.text("secret_env", d.secret_env),
                     workers=r.integer("workers", d.workers, 1))
