"""Building mails (headers, MIME, DKIM) and talking SMTP: one reusable, rate-limited connection.

Decides nothing about who gets what: monitor.outbox does. A delivery attempt ends in one of four
outcomes (sent, temporary, permanent, unknown), so the caller can record it exactly.
"""

from __future__ import annotations

import binascii
import contextlib
import os
import re
import secrets
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate
from functools import lru_cache
from pathlib import Path

from monitor import dkim_signing
from monitor.errors import MailError

# Headers the DKIM signature covers (those absent from a message are skipped).
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


def make_message_id(config, kind: str) -> str:
    domain = config.smtp.from_address.rsplit("@", 1)[1]
    return f"<{kind}.{secrets.token_hex(10)}@{domain}>"


def _needs_utf8(address: str) -> bool:
    return not address.isascii()


def _clean(value: str) -> str:
    """One header line's worth of text: line breaks and control characters become spaces."""
    value = str(value)
    if value.isprintable():
        return " ".join(value.split())
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


@lru_cache(maxsize=1024)
def _encoded(value: str) -> str:
    """RFC 2047 for non-ASCII header text (subjects repeat, so this is cached)."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=900).encode(linesep="\r\n")


@lru_cache(maxsize=4096)
def _address(name: str, address: str) -> str:
    name = _clean(name)
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    return f"{_encoded(name)} <{address}>"


def _fold_list(name: str, items: list[str]) -> str:
    """'Name: <a>,\r\n <b>': one item per line keeps every line short (DKIM relaxed-safe)."""
    return f"{name}: " + ",\r\n ".join(items)


_MAX_LINE = 990  # SMTP allows 998 octets a line; leave room
_RESERVE = 256  # bytes kept free for each placeholder on a line of a MimeBody's HTML
_PRE_MARKS = (b"<pre", b"<textarea", b"white-space:pre", b"white-space: pre")


def _reflow_html(data: bytes, limit: int = _MAX_LINE) -> bytes | None:
    """Break HTML lines over the SMTP limit by turning an existing space into a line break.

    In HTML outside <pre> (and white-space: pre) a line break is the same whitespace as a space,
    also between attributes, so the page is unchanged. None when that is not possible (a <pre>,
    or a long run without spaces): the caller falls back to quoted-printable.
    """
    lowered = data.lower()  # a case-insensitive regex over 60 KB costs ~3 ms; this ~0.05
    if any(mark in lowered for mark in _PRE_MARKS):
        return None
    out = []
    for line in data.split(b"\n"):
        while len(line) >= limit:
            cut = line.rfind(b" ", 0, limit)
            if cut <= 0:
                return None
            out.append(line[:cut])
            line = line[cut + 1 :]
        out.append(line)
    return b"\n".join(out)


def _encode_part(text: str, content_type: str, allow_8bit: bool) -> tuple[bytes, bytes]:
    """(Content-Transfer-Encoding, body with LF line ends) for one text part, as few lines as the
    content allows: 7bit when it is ASCII with lines under 998 bytes, 8bit for UTF-8 when the
    server takes 8BITMIME, else quoted-printable (binascii does it in C). The receiving server's
    work grows with the number of lines, and quoted-printable cuts a 60 KB digest into 800."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    fits = max(map(len, data.split(b"\n"))) < _MAX_LINE
    if not fits and content_type == "text/html":
        reflowed = _reflow_html(data)
        if reflowed is not None:
            data, fits = reflowed, True
    if fits and data.isascii():
        return b"7bit", data
    if fits and allow_8bit:
        return b"8bit", data
    return b"quoted-printable", binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


@dataclass(frozen=True)
class _Part:
    """One encoded text part (its headers, CRLF line ends) and where its placeholders are."""

    data: bytes
    cte: bytes
    placeholders: tuple[bytes, ...]  # those present in the part's text
    longest: int  # the longest line holding a placeholder
    most: int  # the most placeholders on one line

    @classmethod
    def build(cls, content_type: str, text: str, allow_8bit: bool, placeholders) -> _Part:
        cte, body = _encode_part(text, content_type, allow_8bit)
        present = tuple(p for p in placeholders if p in text)
        marks = tuple(p.encode("ascii") for p in present)
        longest = most = 0
        if marks and cte != b"quoted-printable":
            lowered = body.lower()
            may_reflow = content_type == "text/html" and not any(m in lowered for m in _PRE_MARKS)
            lines = body.split(b"\n")
            for i, line in enumerate(lines):
                count = sum(line.count(m) for m in marks)
                if count and may_reflow and len(line) + count * _RESERVE >= _MAX_LINE:
                    # Room for the values, so that filling them in stays exact.
                    lines[i] = _reflow_html(line, _MAX_LINE - count * _RESERVE) or line
                for piece in lines[i].split(b"\n"):
                    count = sum(piece.count(m) for m in marks)
                    if count:
                        longest, most = max(longest, len(piece)), max(most, count)
            body = b"\n".join(lines)
        # The CRLF before a boundary belongs to the boundary: one more keeps a final line break.
        data = (
            b"Content-Type: " + content_type.encode("ascii") + b'; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: "
            + cte
            + b"\r\n\r\n"
            + body.replace(b"\n", b"\r\n")
            + b"\r\n"
        )
        return cls(data, cte, tuple(p.encode("ascii") for p in present), longest, most)

    def fill(self, values: dict[str, str]) -> bytes | None:
        """The part with each placeholder replaced by values[placeholder]; None when that is not
        exact in the encoded bytes (quoted-printable, a line that would pass the SMTP limit,
        non-ASCII in a 7bit part)."""
        if not self.placeholders:
            return self.data
        if self.cte == b"quoted-printable":
            return None
        data, growth = self.data, 0
        for mark in self.placeholders:
            value = values[mark.decode("ascii")]
            if "\n" in value or "\r" in value or (self.cte == b"7bit" and not value.isascii()):
                return None
            raw = value.encode("utf-8")
            growth = max(growth, len(raw) - len(mark))
            data = data.replace(mark, raw)
        if self.longest + self.most * growth >= _MAX_LINE and (
            max(map(len, data.split(b"\r\n"))) >= _MAX_LINE
        ):
            return None
        return data


class MimeBody:
    """The MIME body of a mail (multipart/alternative, text first, then HTML, when html is
    given), built once and filled in for each recipient.

    Placeholders are ASCII words in text and html standing for a recipient's own values (their
    links): fill() replaces them in the encoded bytes, so 10,000 personalised copies of an issue
    cost one encoding per variant. fill() returns None where that would not be exact, and the
    caller then builds the recipient's message from the filled-in text instead.
    """

    def __init__(
        self, text: str, html: str | None = None, *, allow_8bit: bool = False, placeholders=()
    ):
        self.parts = [_Part.build("text/plain", text, allow_8bit, placeholders)]
        if html is not None:
            self.parts.append(_Part.build("text/html", html, allow_8bit, placeholders))
            self.boundary = f"=_bm_{secrets.token_hex(12)}".encode("ascii")

    def fill(
        self, text_values: dict[str, str] | None = None, html_values: dict[str, str] | None = None
    ) -> tuple[bytes, bytes] | None:
        """(the Content-* header lines, the body), or None (see the class)."""
        filled = [
            part.fill(values or {})
            for part, values in zip(self.parts, (text_values, html_values), strict=False)
        ]
        if None in filled:
            return None
        if len(filled) == 1:
            head, _, body = filled[0].partition(b"\r\n\r\n")
            return head, body
        separator = b"--" + self.boundary + b"\r\n"
        body = (
            b"This is a multipart message in MIME format.\r\n\r\n"
            + separator
            + filled[0]
            + separator
            + filled[1]
            + b"--"
            + self.boundary
            + b"--\r\n"
        )
        return b'Content-Type: multipart/alternative; boundary="' + self.boundary + b'"', body


def build_message(
    config,
    *,
    to_address: str,
    to_name: str = "",
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    list_id: bool = False,
    date: float | None = None,
    extra_headers: dict | None = None,
    allow_8bit: bool = False,
) -> bytes:
    """The wire bytes of one mail: multipart/alternative (text first, then HTML) when html is
    given; List-* headers when list_id; DKIM-signed when `[smtp] dkim_key_file` is set.

    Written by hand rather than with email.message: the standard library's header folding costs
    ~10 ms a message, which alone would cap a send at 100 messages per second.
    """
    return compose_message(
        config,
        MimeBody(text, html, allow_8bit=allow_8bit).fill(),
        to_address=to_address,
        to_name=to_name,
        subject=subject,
        message_id=message_id,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
        list_id=list_id,
        date=date,
        extra_headers=extra_headers,
    )


def compose_message(
    config,
    body: tuple[bytes, bytes],
    *,
    to_address: str,
    to_name: str = "",
    subject: str,
    message_id: str,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    list_id: bool = False,
    date: float | None = None,
    extra_headers: dict | None = None,
) -> bytes:
    """The wire bytes of one mail around a filled MimeBody (see build_message)."""
    smtp = config.smtp
    headers = [
        f"From: {_address(smtp.from_name, smtp.from_address)}",
        f"To: {_address(to_name or '', to_address)}",
    ]
    if smtp.reply_to:
        headers.append(f"Reply-To: {_clean(smtp.reply_to)}")
    headers += [
        f"Subject: {_encoded(_clean(subject))}",
        f"Date: {formatdate(date, usegmt=True)}",
        f"Message-ID: {_clean(message_id)}",
        "MIME-Version: 1.0",
    ]
    if list_id:
        title = _clean(config.digest.title)
        phrase = _quote_phrase(title) if title.isascii() else _encoded(title)
        headers.append(f"List-Id: {phrase} <{_clean(config.digest.list_id)}>")
        targets = [f"<{_clean(u)}>" for u in (unsubscribe_url, unsubscribe_mailto) if u]
        if targets:
            headers.append(_fold_list("List-Unsubscribe", targets))
        if unsubscribe_url:
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    for name, value in (extra_headers or {}).items():
        headers.append(f"{_clean(name)}: {_encoded(_clean(value))}")
    content_head, content = body
    data = "\r\n".join(headers).encode("utf-8") + b"\r\n" + content_head + b"\r\n\r\n" + content
    signer = _dkim_signer(smtp.dkim_key_file, smtp.dkim_selector, smtp.dkim_domain)
    if signer is not None:
        data = signer(data) + data
    return data


def _quote_phrase(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dkim_signer(key_file: Path | None, selector: str | None, domain: str | None):
    if not key_file:
        return None
    key = _read_key(str(key_file))
    sel, dom = selector.encode("ascii"), domain.encode("idna")

    def sign(data: bytes) -> bytes:
        try:
            return dkim_signing.sign(data, key, sel, dom, DKIM_HEADERS)
        except ValueError as exc:
            raise MailError(f"DKIM signing with {key_file} failed: {exc}.") from exc

    return sign


@lru_cache(maxsize=4)
def _read_key(path: str):
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise MailError(f"The DKIM key {path} cannot be read ({exc.strerror}).") from None
    if b"PRIVATE KEY" not in pem:
        raise MailError(f"The DKIM key {path} is not a PEM private key.")
    try:
        return dkim_signing.load_key(pem)
    except (ValueError, TypeError) as exc:
        raise MailError(f"The DKIM key {path} is not a usable RSA private key ({exc}).") from None


# -- SMTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    outcome: str  # sent | temporary | permanent | unknown | cancelled (by the caller's claim)
    code: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"

    def describe(self) -> str:
        return f"{self.code} {self.message}".strip() if self.code else self.message


@lru_cache(maxsize=64)
def _quoted_cached(address: str) -> str:
    return smtplib.quoteaddr(address)


def _quoted(address: str) -> str:
    """<address> for MAIL FROM and RCPT TO, as smtplib quotes it (email.utils.parseaddr costs
    ~40 us; our addresses are already validated, so a plain one needs no parsing)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return _quoted_cached(address)


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_CANCELLED = SendResult("cancelled", None, "withdrawn before anything was handed over")


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: a dot starting a line is doubled (RFC 5321 4.5.2), a final CRLF added."""
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    if data[:1] == b".":
        data = b"." + data
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SmtpSender:
    """One SMTP connection, opened on first use, reused for every message, reopened when lost."""

    def __init__(self, smtp_config, *, connect_attempts: int = 3):
        self.cfg = smtp_config
        self.connect_attempts = connect_attempts
        self.conn: smtplib.SMTP | None = None
        self.connections = 0
        self._min_interval = 1.0 / smtp_config.rate_limit if smtp_config.rate_limit else 0.0
        self._next_slot = 0.0

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _open(self) -> smtplib.SMTP:
        cfg = self.cfg
        context = None
        if cfg.security in ("tls", "starttls"):
            context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        last: Exception | None = None
        for attempt in range(self.connect_attempts):
            if attempt:
                time.sleep(min(0.5 * 2**attempt, 5))
            try:
                if cfg.security == "tls":
                    conn = smtplib.SMTP_SSL(
                        cfg.host, cfg.port, timeout=cfg.timeout, context=context
                    )
                else:
                    conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                conn.ehlo()
                if cfg.security == "starttls":
                    if not conn.has_extn("starttls"):
                        conn.close()
                        raise MailError(
                            f"The SMTP server {self.where()} does not offer STARTTLS; "
                            "set [smtp] security to 'tls' or 'none'."
                        )
                    conn.starttls(context=context)
                    conn.ehlo()
                if cfg.user:
                    password = os.environ.get(cfg.password_env or "")
                    if not password:
                        conn.close()
                        raise MailError(
                            f"[smtp] user is set but the environment variable "
                            f"{cfg.password_env} holding the password is empty."
                        )
                    conn.login(cfg.user, password)
                with contextlib.suppress(OSError, AttributeError):
                    # Commands are small writes answered one at a time: no Nagle delay for them.
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connections += 1
                return conn
            except smtplib.SMTPAuthenticationError as exc:
                raise MailError(
                    f"The SMTP server {self.where()} refused the login for "
                    f"{cfg.user}: {exc.smtp_code} {_text(exc.smtp_error)}."
                ) from None
            except ssl.SSLError as exc:
                raise MailError(f"TLS with the SMTP server {self.where()} failed: {exc}.") from None
            except (OSError, smtplib.SMTPException) as exc:
                last = exc
        raise MailError(
            f"Cannot connect to the SMTP server {self.where()} "
            f"({_describe_exc(last)}); nothing more was sent."
        )

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self._drop()

    def _throttle(self) -> None:
        if not self._min_interval:
            return
        now = time.monotonic()
        if now < self._next_slot:
            time.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + self._min_interval

    def send(self, to_address: str, data: bytes, while_waiting=None, claim=None) -> SendResult:
        """Deliver one message to one recipient; never raises for the recipient's own problems.

        `unknown` means the connection broke after the whole message was handed over and before
        the server answered: it may or may not have been accepted. MailError is raised when the
        server cannot be reached at all or refuses our sender address. while_waiting() is called
        (once, must not raise) while the server processes the message. claim() is called once,
        before anything of the message is handed over, while the server reads MAIL FROM; when it
        returns False the transaction is reset and the outcome is `cancelled`.
        """
        self._throttle()
        utf8 = _needs_utf8(to_address)
        options = ["SMTPUTF8"] if utf8 else []
        if b"Content-Transfer-Encoding: 8bit" in data:
            options.append("BODY=8BITMIME")
        claimed = claim is None
        for attempt in range(2):
            if self.conn is None:
                self.conn = self._open()
            conn = self.conn
            try:
                if utf8 and not conn.has_extn("smtputf8"):
                    if not claimed and not claim():
                        return _CANCELLED
                    return SendResult(
                        "permanent",
                        None,
                        "the SMTP server does not support "
                        "SMTPUTF8, needed for this non-ASCII address",
                    )
                conn.command_encoding = "utf-8" if utf8 else "ascii"
                optionlist = " " + " ".join(options) if options and conn.does_esmtp else ""
                conn.putcmd("mail", f"FROM:{_quoted(self.cfg.from_address)}{optionlist}")
                if not claimed:
                    claimed = True
                    try:
                        granted = claim()
                    except BaseException:
                        self._drop()  # the answer to MAIL is still unread
                        raise
                    if not granted:
                        with contextlib.suppress(smtplib.SMTPException, OSError):
                            conn.getreply()
                        self._reset()
                        return _CANCELLED
                code, resp = conn.getreply()
                if code != 250:
                    self._reset()
                    if code >= 500:
                        raise MailError(
                            f"The SMTP server {self.where()} refused the sender "
                            f"{self.cfg.from_address}: {code} {_text(resp)}."
                        )
                    return _classify(code, resp)
                conn.putcmd("rcpt", f"TO:{_quoted(to_address)}")
                code, resp = conn.getreply()
                if code not in (250, 251):
                    self._reset()
                    return _classify(code, resp)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                # Nothing was handed over yet: safe to reconnect and try once more.
                self._drop()
                if attempt == 0:
                    continue
                return SendResult("temporary", None, f"connection lost ({_describe_exc(exc)})")
            break
        try:
            code, resp = conn.docmd("data")
            if code != 354:
                self._reset()
                return _classify(code, resp)
            conn.send(_dot_stuffed(data) + b".\r\n")
            if while_waiting is not None:
                while_waiting()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult(
                "temporary",
                None,
                f"connection lost before the message was complete ({_describe_exc(exc)})",
            )
        try:
            code, resp = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult(
                "unknown",
                None,
                "connection lost after the message was handed over, "
                f"before the server answered ({_describe_exc(exc)})",
            )
        if code == 421:
            self._drop()
        if code == 250:
            return SendResult("sent", code, _text(resp))
        return _classify(code, resp)

    def supports(self, extension: str) -> bool:
        """Whether the server offers an ESMTP extension (connects if not connected yet)."""
        if self.conn is None:
            self.conn = self._open()
        return bool(self.conn.has_extn(extension))

    def _reset(self) -> None:
        try:
            self.conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def send_or_raise(self, to_address: str, data: bytes) -> None:
        result = self.send(to_address, data)
        if not result.ok:
            raise MailError(
                f"The mail to {to_address} was not accepted by {self.where()}: {result.describe()}."
            )


def _classify(code: int, resp: bytes) -> SendResult:
    if code == -1:
        return SendResult("temporary", None, "the server closed the connection")
    outcome = "permanent" if 500 <= code < 600 else "temporary"
    return SendResult(outcome, code, _text(resp))


def _text(resp) -> str:
    if isinstance(resp, bytes):
        return resp.decode("utf-8", "replace").replace("\n", " ")
    return str(resp)


def _describe_exc(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
