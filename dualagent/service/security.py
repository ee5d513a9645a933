"""The token check on every HTTP and websocket request, and secrets kept out of the logs.

A client gives the token as ``Authorization: Bearer TOKEN`` or as ``?token=TOKEN`` (browsers
cannot set headers on a websocket or an ``<audio>`` element). It is compared in constant time
(:func:`hmac.compare_digest`). Refusals never echo what was sent. Access logs and the
websocket handshake's debug lines would show ``?token=`` and the header, so
:class:`RedactSecrets` rewrites them before any handler sees the record.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from pydantic import SecretStr

# Loggers that can see request lines or headers (uvicorn's access log and its websocket
# handshake, which logs through "uvicorn.error" at debug level).
# "uvicorn.asgi" logs whole ASGI scopes (query string, headers) at trace level.
SERVICE_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "websockets.server",
    "dualagent.service",
)

# Query parameters that carry secrets: the token, keys, backend headers (refused, but logged
# by the server before the app sees them).
_QUERY_SECRET = re.compile(r"(?i)\b(token|api_key|key|\w*header)=[^&\s\"']+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',]+")
_AUTH_HEADER = re.compile(r"(?i)(authorization\s*:\s*)(\S+(\s+\S+)?)")


def token_matches(given: str | None, expected: SecretStr | None) -> bool:
    """Whether ``given`` is the token (constant-time; no token configured: always)."""
    if expected is None:
        return True
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The token a request carries: the bearer header first, else ``?token=``."""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "token":
            return value
    return None


class TokenMiddleware:
    """ASGI middleware: no valid token, no service (HTTP 401; websocket refused with 403)."""

    def __init__(self, app: Any, token: SecretStr | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or token_matches(
            token_from_scope(scope), self.token
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting refuses the handshake (HTTP 403).
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
            return
        body = json.dumps(
            {"error": "unauthorized", "detail": "a valid token is required (bearer or ?token=)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with tokens, keys and bearer credentials replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=***", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}***", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} ***", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message with :func:`redact` (and the given secrets) before output."""

    def __init__(self, secrets: Iterable[SecretStr | str | None] = ()) -> None:
        super().__init__()
        self.secrets = [
            s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets if s
        ]

    def filter(self, record: logging.LogRecord) -> bool:
        # Each part is cleaned where it is, so formatters that read ``args`` (uvicorn's access
        # log unpacks them) still work.
        record.msg = self._clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: self._clean(value) for key, value in record.args.items()}
        if "color_message" in record.__dict__:
            record.__dict__["color_message"] = self._clean(record.__dict__["color_message"])
        return True

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if value is None or isinstance(value, int | float):
            return value
        text = str(value)  # a scope, headers, bytes...: shown as text if it held a secret
        cleaned = redact(text, self.secrets)
        return value if cleaned == text else cleaned


def install_redaction(secrets: Iterable[SecretStr | str | None]) -> RedactSecrets:
    """Attach one :class:`RedactSecrets` to every logger that can see a request."""
    redactor = RedactSecrets(secrets)
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).addFilter(redactor)
    return redactor


def remove_redaction(redactor: RedactSecrets) -> None:
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).removeFilter(redactor)
