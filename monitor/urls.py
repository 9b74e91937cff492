"""Canonical URLs and dedupe keys, pure: one article seen under many URLs must become one row.

Handles tracking parameters, http vs https, AMP variants, trailing slashes, default ports, case of the
host, fragments. Anything that is not http(s) is refused: such links never leave the system.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

SAFE_SCHEMES = ("http", "https")

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "piwik_", "matomo_", "hsa_", "oly_", "_hs", "vero_", "ga_")
_TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "twclid",
    "mkt_tok", "_ga", "_gl", "ref", "ref_src", "ref_url", "referrer", "cmpid", "ito", "ns_mchannel",
    "ns_source", "ns_campaign", "ns_linkname", "ns_fee", "at_medium", "at_campaign", "at_custom1",
    "xtor", "xts", "smid", "smtyp", "share", "sharing", "s_cid", "spm",
    "wt_mc", "wt.mc_id", "rss", "amp", "outputtype", "rssfeed",
}
_AMP_PATH = re.compile(r"(/amp/?$)|(\.amp(?=\.html?$|$))|(/amp(?=/))", re.IGNORECASE)


def safe_url(url: object, base: str | None = None) -> str | None:
    """The absolute http(s) form of url, or None for javascript:, data:, mailto:, garbage."""
    if not isinstance(url, str):
        return None
    text = "".join(ch for ch in url.strip() if ch >= " " and ch not in "\u200b\u200c\u200d\ufeff")
    if not text:
        return None
    if base:
        try:
            text = urljoin(base, text)
        except ValueError:
            return None
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on an absurd port
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname:
        return None
    if port is not None and not 0 < port < 65536:
        return None
    return text


def canonical_url(url: str, base: str | None = None) -> str | None:
    """Normalised URL to store and show: https kept as given, tracking and AMP removed."""
    text = safe_url(url, base)
    if text is None:
        return None
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        pass
    if host.startswith("amp.") and host.count(".") >= 2:
        host = host[4:]
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    path = parts.path or "/"
    path = _AMP_PATH.sub(lambda m: "/" if m.group(1) or m.group(3) else "", path)
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    # A "#!" fragment is a route (AJAX-crawlable sites), not a place on the page: dropping it
    # would merge every article of such a site into one row.
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), fragment))


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def url_key(url: str) -> str | None:
    """Dedupe key: the canonical URL without scheme and leading www. (http and https are one)."""
    canonical = canonical_url(url)
    if canonical is None:
        return None
    parts = urlsplit(canonical)
    host = parts.netloc
    if host.startswith("www."):
        host = host[4:]
    if host.startswith("m.") and host.count(".") >= 2:
        host = host[2:]
    key = host + parts.path
    if parts.query:
        key += "?" + parts.query
    if parts.fragment:
        key += "#" + parts.fragment
    return key


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _site(host: str) -> str:
    for prefix in ("www.", "amp.", "m."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
    return host


def trusted_canonical(canonical: str | None, page_url: str) -> str | None:
    """A page's canonical link, if it can be believed.

    Pages (and trafilatura's metadata guesses) sometimes name a section, the home page or an
    image host as "canonical"; trusting that would merge different articles into one row. So the
    link must stay on the same site and point below the root.
    """
    if not canonical:
        return None
    url = safe_url(canonical, page_url)
    if url is None:
        return None
    if _site(host_of(url)) != _site(host_of(page_url)):
        return None
    path = urlsplit(url).path
    if len(path.strip("/")) < 2:
        return None
    return url
