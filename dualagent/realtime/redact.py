"""Keeping credentials out of logs, messages and files: URLs, header lines and known values.

A secret reaches a Realtime backend three ways: a header (``Authorization: Bearer sk-...``,
Azure's ``api-key``), a query parameter (``?api-key=``, ``?token=``) or the user part of a URL
(``wss://user:password@host``). Everything that may be shown or written goes through these
functions first: connection errors, the backend named in ``call_metadata.json``, and every log
record of our websocket connections (:class:`RedactingLogger`; the websockets library logs the
request line and every request header at DEBUG).

Names "like a secret" are matched by :data:`SECRET_NAME`: key, token, secret, password,
signature, credential, auth, cookie... (``api-key``, ``x-api-key``, ``Authorization``,
``access_token``, ``sig``). Pure functions, no I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

SECRET_NAME = re.compile(
    r"(key|token|secret|passw|pwd|auth|signature|^sig$|credential|cookie)", re.IGNORECASE
)
"""A header or query parameter whose value must never be shown."""

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s?#]*@")
_QUERY_PAIR = re.compile(r"(?P<name>[A-Za-z0-9_.~%-]+)=(?P<value>[^&\s#\"']*)")
_HEADER_LINE = re.compile(
    r"^(?P<prefix>[<>]?\s*)(?P<name>[A-Za-z0-9-]+)(?P<sep>:\s*)(?P<value>.+)$"
)
_BEARER = re.compile(r"(?P<scheme>\b(?:Bearer|Basic)\s+)[^\s\"',]+", re.IGNORECASE)
_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{6,}")


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter named ``name`` carries a credential."""
    return bool(SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """``url`` without its user part and with secret-named query values replaced.

    Never raises: a URL that cannot be parsed is reduced to its scheme (if any).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        if ":" in host:  # an IPv6 address keeps its brackets
            host = f"[{host}]"
        query = urlencode(
            [
                (name, REDACTED if is_secret_name(name) else value)
                for name, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="[]",
        )
        return urlunsplit((parts.scheme, host + port, parts.path, query, ""))
    except ValueError:  # a bad port, a broken IPv6 literal...
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://[invalid URL]" if scheme.isalnum() else "[invalid URL]"


def secret_values(url: str = "", headers: Mapping[str, str] | None = None) -> list[str]:
    """The credential values an endpoint carries: secret-named headers and query values, the
    URL's password. Whole header values count too (``Bearer sk-...`` and ``sk-...``)."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if is_secret_name(name) and value:
            found.append(value)
            found += [
                part
                for part in value.split()
                if len(part) >= 6 and part.lower() not in ("bearer", "basic")
            ]
    try:
        parts = urlsplit(url)
        found += [v for n, v in parse_qsl(parts.query) if is_secret_name(n) and v]
        if parts.password:
            found.append(parts.password)
        if parts.username:
            found.append(parts.username)
    except ValueError:
        found += [m.group(0) for m in re.finditer(r"(?<=://)[^/@\s]+(?=@)", url)]
    return sorted({v for v in found if len(v) >= 4}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known ``secrets`` and anything shaped like a credential replaced: a URL's
    user part, secret-named query values, secret-named header lines, ``Bearer``/``Basic``
    values, and OpenAI-style keys (``sk-...``)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _USERINFO.sub(lambda m: m.group("scheme"), text)
    text = _QUERY_PAIR.sub(
        lambda m: (
            f"{m.group('name')}={REDACTED}" if is_secret_name(m.group("name")) else m.group(0)
        ),
        text,
    )
    text = "\n".join(_redact_header_line(line) for line in text.split("\n"))
    text = _BEARER.sub(lambda m: m.group("scheme") + REDACTED, text)
    return _OPENAI_KEY.sub(REDACTED, text)


def _redact_header_line(line: str) -> str:
    match = _HEADER_LINE.match(line)
    if match is None or not is_secret_name(match.group("name")):
        return line
    return f"{match.group('prefix')}{match.group('name')}{match.group('sep')}{REDACTED}"


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for one connection that redacts every record before it is emitted.

    Passed to ``websockets.connect(logger=...)`` (and ``serve``): the library logs the request
    line (query string included) and each request header at DEBUG. The message is formatted
    here, so a secret in an argument is caught too; ``secrets`` are the exact values to hide.
    """

    def __init__(self, logger: logging.Logger, secrets: Iterable[str] = ()) -> None:
        super().__init__(logger, {})
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def redact(self, text: str) -> str:
        return redact_text(text, self.secrets)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join([str(msg), *map(str, args)])
        kwargs.pop("extra", None)  # the connection object websockets attaches: not needed
        self.logger.log(level, "%s", self.redact(text), **kwargs)
