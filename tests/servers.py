"""A real HTTP server on loopback serving fixture feeds and pages, including hostile behaviours.

Routes are registered per test: `site.add(path, body, content_type=..., status=..., headers=...)`
or one of the built-in hostile behaviours under /hostile/… Every request is recorded in
`site.requests` so tests can assert what the crawler actually asked for.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import zlib
from dataclasses import dataclass, field
from email.utils import formatdate

import brotli


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict = field(default_factory=dict)
    etag: str | None = None
    delay: float = 0.0


BOMB_SIZE = 64 * 1024 * 1024  # decompressed; compressed it is a few hundred KB or less


def _bomb(kind: str, size: int) -> bytes:
    zeros = b"\0" * size
    if kind == "gzip":
        return gzip.compress(zeros, compresslevel=9)
    if kind == "deflate":
        return zlib.compress(zeros, 9)
    return brotli.compress(zeros, quality=5)


class Site:
    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict]] = []
        self.stop = threading.Event()
        self._bombs: dict[str, bytes] = {}
        # Requests being answered at once, per first path segment ("news" for /news/…): now and peak.
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self._count_lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                site.requests.append((self.path, dict(self.headers)))
                segment = self.path.split("/", 2)[1] if self.path.count("/") > 1 else ""
                site._count(segment, +1)
                try:
                    site.handle(self)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    pass
                finally:
                    site._count(segment, -1)

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # resets are expected
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str, content_type: str = "application/rss+xml; charset=utf-8",
            status: int = 200, headers: dict | None = None, etag: str | None = None,
            delay: float = 0.0) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body, content_type, status, headers or {}, etag, delay)
        return self.url(path)

    def prepare_bombs(self) -> None:
        """Compress the bombs up front, so building them does not count against a timeout."""
        for kind in ("gzip", "deflate", "br"):
            self._bombs.setdefault(kind, _bomb(kind, BOMB_SIZE))

    def _count(self, segment: str, step: int) -> None:
        with self._count_lock:
            now = self.in_flight[segment] = self.in_flight.get(segment, 0) + step
            self.peak_in_flight[segment] = max(self.peak_in_flight.get(segment, 0), now)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def start(self) -> Site:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    # -- behaviour -----------------------------------------------------------------------------

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path
        route = self.routes.get(path) or self.routes.get(path.split("?", 1)[0])
        if route is not None:
            if route.delay:
                self.stop.wait(route.delay)
            if route.etag and h.headers.get("If-None-Match") == route.etag:
                h.send_response(304)
                h.send_header("ETag", route.etag)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(route.status)
            h.send_header("Content-Type", route.content_type)
            h.send_header("Content-Length", str(len(route.body)))
            if route.etag:
                h.send_header("ETag", route.etag)
                h.send_header("Last-Modified", formatdate(usegmt=True))
            for name, value in route.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(route.body)
            return
        if path.startswith("/hostile/"):
            return self.hostile(h, path.removeprefix("/hostile/"))
        h.send_response(404)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", "9")
        h.end_headers()
        h.wfile.write(b"not found")

    def hostile(self, h, name: str) -> None:
        if name == "hang":  # accept, then never answer
            self.stop.wait(120)
            return
        if name == "drip":  # a byte per second, forever
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            h.send_header("Content-Length", "100000")
            h.end_headers()
            for _ in range(120):
                if self.stop.wait(1):
                    return
                h.wfile.write(b"<")
                h.wfile.flush()
            return
        if name == "huge":  # announces and streams 1 GB
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            h.send_header("Content-Length", str(1 << 30))
            h.end_headers()
            chunk = b"x" * 65536
            for _ in range((1 << 30) // 65536):
                if self.stop.is_set():
                    return
                h.wfile.write(chunk)
            return
        if name == "huge-chunked":  # 1 GB without Content-Length
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = b"x" * 65536
            for _ in range((1 << 30) // 65536):
                if self.stop.is_set():
                    return
                h.wfile.write(chunk)
            return
        if name in ("gzip-bomb", "deflate-bomb", "br-bomb"):
            kind = name.split("-")[0]
            encoding = {"gzip": "gzip", "deflate": "deflate", "br": "br"}[kind]
            if kind not in self._bombs:
                self._bombs[kind] = _bomb(kind, BOMB_SIZE)
            body = self._bombs[kind]
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            h.send_header("Content-Encoding", encoding)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if name.startswith("loop"):  # /hostile/loop-a <-> /hostile/loop-b
            target = "/hostile/loop-b" if name == "loop-a" else "/hostile/loop-a"
            return self._redirect(h, target)
        if name.startswith("redirect?to="):
            from urllib.parse import unquote

            return self._redirect(h, unquote(name.removeprefix("redirect?to=")))
        if name == "reset":  # close the connection without an answer
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.send_response(404)
        h.send_header("Content-Length", "0")
        h.end_headers()

    @staticmethod
    def _redirect(h, location: str) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()


def rss(items: list[dict], title: str = "Fixture feed", language: str = "en") -> str:
    """Build an RSS 2.0 document; values are inserted as given (tests control escaping)."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
             f"<title>{title}</title><link>http://127.0.0.1/</link><language>{language}</language>"
             "<description>fixture</description>"]
    for item in items:
        parts.append("<item>")
        for key in ("title", "link", "description", "pubDate", "author", "guid"):
            if key in item:
                parts.append(f"<{key}>{item[key]}</{key}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts)
