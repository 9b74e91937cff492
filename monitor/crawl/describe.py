"""Turn Twisted/Scrapy failures into sentences a comms officer can read."""

from __future__ import annotations

from http import HTTPStatus

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import defer, error
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from monitor.crawl.guard import BLOCKED_RESOLUTIONS, blocked_sentence
from monitor.errors import MonitorError
from monitor.urls import host_of


def describe_status(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    return f"The server answered HTTP {status} ({phrase})."


def describe_failure(failure, url: str, timeout: float, max_bytes: int) -> str:
    exc = failure.value
    host = host_of(url)
    if isinstance(exc, MonitorError):
        return str(exc)
    if isinstance(exc, HttpError):
        response = exc.response
        location = response.headers.get(b"Location")
        if 300 <= response.status < 400 and location:
            target = location.decode("latin-1")[:200]
            scheme = target.split(":", 1)[0].lower() if ":" in target else "http"
            if scheme not in ("http", "https"):
                return f"The address redirects to {target}, which is not an http(s) address and was not followed."
        return describe_status(response.status)
    if isinstance(exc, ValueError) and "scheme" in str(exc).lower():
        return f"The address redirects to {str(exc).rsplit(': ', 1)[-1][:200]}, which is not an http(s) address and was not followed."
    if isinstance(exc, DownloadCancelledError) or "download max size" in str(exc):
        return f"The response was larger than {max_bytes / 1_000_000:g} MB and was refused."
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "max redirections" in text.lower() or "redirect" in text.lower() and "max" in text.lower():
            return "The address redirects too many times (a redirect loop)."
        if "DOWNLOAD_MAXSIZE" in text or "max size" in text.lower():
            return (f"The response was larger than {max_bytes / 1_000_000:g} MB once decompressed "
                    "and was refused.")
        if "robots.txt" in text.lower() or "Forbidden by robots" in text:
            return "The site's robots.txt does not allow fetching this address."
        return text or "The request was refused."
    if isinstance(exc, UnsupportedURLSchemeError):
        return f"The address {url[:200]} is not an http(s) address and was not followed."
    if isinstance(exc, (error.TimeoutError, defer.TimeoutError, DownloadTimeoutError)) or \
            "took longer than" in str(exc):
        return f"The server did not send a complete answer within {timeout:g} seconds."
    if isinstance(exc, defer.CancelledError):
        text = str(exc)
        if "max size" in text.lower() or "maxsize" in text.lower() or "larger than" in text.lower():
            return f"The response was larger than {max_bytes / 1_000_000:g} MB and was refused."
        return f"The download was cancelled ({text[:120] or 'no reason given'})."
    if isinstance(exc, (error.DNSLookupError, CannotResolveHostError)):
        if host in BLOCKED_RESOLUTIONS:
            return blocked_sentence(url, BLOCKED_RESOLUTIONS[host])
        return f"The host name {host} could not be found (DNS)."
    if isinstance(exc, (error.ConnectionRefusedError, DownloadConnectionRefusedError)):
        return f"The server {host} refused the connection."
    if isinstance(exc, (ResponseNeverReceived, ResponseFailed, error.ConnectionLost,
                        error.ConnectionDone, DownloadFailedError, ResponseDataLossError)) or \
            hasattr(exc, "reasons"):
        reasons = getattr(exc, "reasons", None) or []
        for reason in reasons:
            inner = reason.value
            if isinstance(inner, defer.CancelledError) or "maxsize" in str(inner).lower():
                return f"The response was larger than {max_bytes / 1_000_000:g} MB and was refused."
        return f"The server {host} closed the connection before sending a complete answer."
    if isinstance(exc, error.ConnectError):
        return f"Could not connect to {host} ({exc.__class__.__name__})."
    text = str(exc).strip() or exc.__class__.__name__
    return f"The download failed: {text[:200]}."
