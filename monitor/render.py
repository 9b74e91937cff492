"""Renders an issue: Jinja2 inside MJML -> HTML (mjml-python), a plain-text part from the same data,
and the web version for the archive. Pure presentation: it reads the issue, never changes it.

Compiled output is cached per (issue revision, section set); per-subscriber links are substituted
into the cached HTML and text afterwards, escaped, so thousands of personalised messages are cheap.
"""

from __future__ import annotations

import html as html_lib
import re
import textwrap
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import jinja2
from mjml import mjml2html

from monitor.config import Config
from monitor.digest import issue_view
from monitor.digest_select import parse_iso
from monitor.errors import DigestError, TemplateError
from monitor.urls import safe_url

BUNDLED_TEMPLATES = Path(__file__).resolve().parent.parent / "newsletter_templates"
EU_REGION = "eu"
FONT_STACK = "Helvetica, Arial, sans-serif"
# Placeholders survive MJML untouched (letters and underscores only) and are replaced per message.
_UNSUBSCRIBE = "BNMUNSUBSCRIBEURLX"
_PREFERENCES = "BNMPREFERENCESURLX"
# Distinct section sets are at most 2^(sections without `eu`) = 128 with the bundled config; a
# compiled 60-story issue is ~90 KB, so 256 entries stay far below the mailer's memory budget.
_CACHE_SIZE = 256


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str
    web_url: str


@dataclass(frozen=True)
class Variant:
    """An issue's message for one section set, its personal links still placeholders: every
    subscriber with the same sections gets it, so a sender can encode it once (monitor.outbox)."""

    key: tuple
    subject: str
    html: str
    text: str
    web_url: str
    placeholders: ClassVar[tuple[str, str]] = (_UNSUBSCRIBE, _PREFERENCES)

    def values(self, unsubscribe: str, preferences: str) -> tuple[dict[str, str], dict[str, str]]:
        """What each placeholder becomes in the text part and in the (escaped) HTML part."""
        text = {_UNSUBSCRIBE: unsubscribe, _PREFERENCES: preferences}
        return text, {k: html_lib.escape(v, quote=True) for k, v in text.items()}

    def personalise(self, unsubscribe: str, preferences: str) -> RenderedMessage:
        text_values, html_values = self.values(unsubscribe, preferences)
        html, text = self.html, self.text
        for mark in self.placeholders:
            html = html.replace(mark, html_values[mark])
            text = text.replace(mark, text_values[mark])
        return RenderedMessage(self.subject, html, text, self.web_url)


_cache: OrderedDict[tuple, Variant] = OrderedDict()
_cache_lock = threading.Lock()
_envs: dict[Path, jinja2.Environment] = {}
_memos: dict[int, tuple[Config, dict]] = {}


# -- public -------------------------------------------------------------------------------------

def render_issue(config: Config, db: Any, issue_id: int, subscriber: dict | None = None, *,
                 test: bool = False, unsubscribe_url: str | None = None,
                 preferences_url: str | None = None) -> RenderedMessage:
    """The message for one subscriber (None: everything, as in the preview).

    A subscriber dict's `regions` and `topics` (empty = everything) select the matching sections
    plus EU-wide developments. The unsubscribe and preferences links come from the arguments, else
    from monitor.subscribers, else point at the generic pages of [digest] base_url.
    """
    variant = render_variant(config, db, issue_id, subscriber, test=test)
    return variant.personalise(*personal_links(config, subscriber, unsubscribe_url,
                                               preferences_url))


def render_variant(config: Config, db: Any, issue_id: int, subscriber: dict | None = None, *,
                   test: bool = False) -> Variant:
    """The subscriber's variant of the issue (render_issue without the personal links)."""
    row = db.execute("SELECT revision FROM digests WHERE id = ?", [issue_id]).fetchone()
    if row is None:
        raise DigestError(f"There is no digest issue with id {issue_id}.")
    memo = _memo(config)
    wanted = (frozenset(subscriber.get("regions") or ()), frozenset(subscriber.get("topics") or ())) \
        if subscriber else None
    slugs = memo.get(wanted)
    if slugs is None:
        slugs = memo[wanted] = sections_for(config, subscriber)
    return _compiled(config, db, issue_id, row[0], slugs, test, memo["key"])


def render_web(config: Config, db: Any, issue_id: int) -> str:
    """The archive's web page of an issue (every section, no personal links)."""
    context = build_context(config, db, issue_id, None, web=True)
    return _render_template(_env(config), "web.html", context)


def web_url(config: Config, week: str) -> str:
    return f"{config.digest.base_url}/digest/{week}"


def check_size(config: Config, db: Any, issue_id: int) -> int:
    """Bytes of the full HTML; DigestError when Gmail would clip it (before approval)."""
    size = len(render_issue(config, db, issue_id).html.encode("utf-8"))
    limit = config.digest.max_html_bytes
    if size > limit:
        raise DigestError(f"The issue's HTML is {size:,} bytes; mail clients clip messages over "
                          f"{limit:,} bytes. Exclude stories or shorten summaries.")
    return size


def sections_for(config: Config, subscriber: dict | None) -> tuple[str, ...]:
    """Slugs of the sections a subscriber receives: all for no preference, else the matching ones
    plus EU-wide developments (sections filtering on the `eu` region)."""
    sections = config.digest.sections
    if not subscriber:
        return tuple(s.slug for s in sections)
    regions = set(subscriber.get("regions") or ())
    topics = set(subscriber.get("topics") or ())
    if not regions and not topics:
        return tuple(s.slug for s in sections)
    taxonomy = config.taxonomy
    wanted = set(regions)
    for region in regions:  # a chosen sub-region also matches sections filtering on its parents
        wanted.update(_ancestors(taxonomy, region))
    chosen = []
    for s in sections:
        section_regions = set(s.regions)
        for region in s.regions:  # ...and a chosen parent matches sections on its children
            if region in regions or _ancestors(taxonomy, region) & regions:
                section_regions.add(region)
        if (section_regions & wanted or set(s.topics) & topics or EU_REGION in s.regions
                or (not s.regions and not s.topics)):
            chosen.append(s.slug)
    return tuple(chosen)


def _ancestors(taxonomy: Any, slug: str) -> set[str]:
    out: set[str] = set()
    regions = getattr(taxonomy, "regions", {}) or {}
    current = regions.get(slug)
    while current is not None:
        parent = getattr(current, "within", None) or (current.get("within") if isinstance(current, dict) else None)
        if not parent or parent in out:
            break
        out.add(parent)
        current = regions.get(parent)
    return out


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _memos.clear()


# -- context ------------------------------------------------------------------------------------

def build_context(config: Config, db: Any, issue_id: int, sections: tuple[str, ...] | None,
                  *, test: bool = False, web: bool = False) -> dict:
    """Everything the templates see: already cleaned text and only http(s) links."""
    view = issue_view(db, config, issue_id)
    tz = ZoneInfo(config.digest.timezone)
    wanted = set(sections) if sections is not None else None
    out_sections = []
    for section in view["sections"]:
        if wanted is not None and section["slug"] not in wanted:
            continue
        entries = [_entry(e, tz) for e in section["entries"]]
        if entries:
            out_sections.append({"slug": section["slug"], "title": _plain(section["title"]),
                                 "entries": entries})
    end = parse_iso(view["window_end"]).astimezone(tz)
    start = parse_iso(view["window_start"]).astimezone(tz)
    period = f"{start:%-d %b} – {end:%-d %b %Y}"
    year, week = view["week"].split("-W")
    subject = f"{_plain(view['title'])} – week {int(week)}, {year}"
    if test:
        subject = "[TEST] " + subject
    headlines = [e["headline"] for s in out_sections for e in s["entries"]]
    return {
        "title": _plain(view["title"]),
        "subject": subject,
        "week": view["week"],
        "period": period,
        "intro": [_plain(p) for p in view["intro"].split("\n\n") if p.strip()],
        "sections": out_sections,
        "story_count": len(headlines),
        "preheader": " · ".join(headlines[:3])[:140],
        "web_url": web_url(config, view["week"]),
        "unsubscribe_url": _UNSUBSCRIBE,
        "preferences_url": _PREFERENCES,
        "test": test,
        "web": web,
        "font": FONT_STACK,
    }


def _plain(text: object) -> str:
    return str(text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _date_label(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        return f"{parse_iso(value).astimezone(tz):%-d %b %Y}"
    except ValueError:
        return ""


def _entry(entry: dict, tz: ZoneInfo) -> dict:
    also = []
    for other in entry.get("also") or []:
        url = safe_url(other.get("url"))
        if url:
            also.append({"label": _plain(other.get("label") or other.get("source")), "url": url,
                         "title": _plain(other.get("title"))})
    return {"story": entry["story"], "headline": _plain(entry["headline"]),
            "summary": _plain(entry["summary"]), "url": safe_url(entry.get("url")),
            "source": _plain(entry.get("source_label") or entry.get("source")),
            "date": _date_label(entry.get("published"), tz), "also": also}


# -- compiling ----------------------------------------------------------------------------------

def _memo(config: Config) -> dict:
    """Per-Config memo (section sets per preference, the config's cache key): hashing a frozen
    dataclass and walking the taxonomy for every one of 10,000 messages is measurable."""
    entry = _memos.get(id(config))
    if entry is None or entry[0] is not config:
        if len(_memos) > 32:
            _memos.clear()
        templates = config.digest.templates or BUNDLED_TEMPLATES
        entry = _memos[id(config)] = (config, {"key": (str(config.storage.database), str(templates),
                                                         hash(config.digest))})
    return entry[1]


def _compiled(config: Config, db: Any, issue_id: int, revision: int, slugs: tuple[str, ...],
              test: bool, config_key: tuple) -> Variant:
    key = (config_key, issue_id, revision, slugs, test)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    context = build_context(config, db, issue_id, slugs, test=test)
    env = _env(config)
    source = _render_template(env, "digest.mjml", context)
    html = compile_mjml(source, "digest.mjml")
    text = _render_template(env, "digest.txt", context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    compiled = Variant(key, context["subject"], html, text, context["web_url"])
    with _cache_lock:
        _cache[key] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def compile_mjml(source: str, template: str = "digest.mjml") -> str:
    """MJML -> HTML with no remote fonts; newlines normalised first (MRML trips over \\r)."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return mjml2html(source, fonts={}, disable_comments=True)
    except ValueError as exc:
        where = ""
        match = re.search(r"position (\d+)", str(exc))
        if match:  # MRML gives a byte offset in the rendered text: show that line of the output
            offset = int(match.group(1))
            prefix = source.encode("utf-8")[:offset].decode("utf-8", "ignore")
            line_no = prefix.count("\n") + 1
            line = source.splitlines()[line_no - 1].strip() if source.splitlines() else ""
            where = f"; rendered line {line_no}: {line[:120]}"
        raise TemplateError(template, None, f"the rendered MJML is not valid ({exc}{where})") from None


def _env(config: Config) -> jinja2.Environment:
    folder = config.digest.templates or BUNDLED_TEMPLATES
    env = _envs.get(folder)
    if env is None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            autoescape=lambda name: not (name or "").endswith(".txt"),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        )
        env.filters["wrap"] = _wrap
        _envs[folder] = env
    return env


def _wrap(text: str, width: int = 72, indent: str = "") -> str:
    paragraphs = str(text).split("\n\n")
    return "\n\n".join(textwrap.fill(p, width=width, initial_indent=indent, subsequent_indent=indent,
                                     break_long_words=False, break_on_hyphens=False)
                       for p in paragraphs)


def _render_template(env: jinja2.Environment, name: str, context: dict) -> str:
    """Render; any failure becomes TemplateError naming the template file and its line."""
    folder = Path(env.loader.searchpath[0]) if isinstance(env.loader, jinja2.FileSystemLoader) else None
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_relative(exc.filename, folder) or exc.name or name, exc.lineno,
                            exc.message or str(exc)) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(name, None, f"the template {exc.name} does not exist in {folder}") from None
    except Exception as exc:
        where, line = name, None
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if folder and filename.startswith(str(folder)):
                where, line = _relative(filename, folder), lineno
        raise TemplateError(where, line, f"{type(exc).__name__}: {exc}") from None


def _relative(filename: str | None, folder: Path | None) -> str | None:
    if not filename:
        return None
    try:
        return str(Path(filename).resolve().relative_to(folder.resolve())) if folder else filename
    except ValueError:
        return filename


def personal_links(config: Config, subscriber: dict | None, unsubscribe: str | None = None,
                   preferences: str | None = None) -> tuple[str, str]:
    """(unsubscribe, preferences) links of a subscriber, checked (see render_issue)."""
    base = config.digest.base_url
    if subscriber is not None and (unsubscribe is None or preferences is None):
        try:
            from monitor import subscribers as subs
        except ModuleNotFoundError as exc:
            if exc.name != "monitor.subscribers":
                raise
        else:
            if unsubscribe is None and hasattr(subs, "unsubscribe_url"):
                unsubscribe = subs.unsubscribe_url(config, subscriber)
            if preferences is None and hasattr(subs, "preferences_url"):
                preferences = subs.preferences_url(config, subscriber)
    unsubscribe = safe_url(unsubscribe) or f"{base}/unsubscribe"
    preferences = safe_url(preferences) or f"{base}/preferences"
    return unsubscribe, preferences
