"""Hosted and other Realtime providers: where an agent's session lives and what it sends there.

:func:`endpoint_for` turns a backend (``local``, ``openai`` or a ``ws://``/``wss://`` URL) into
the URL and headers of one agent's websocket: the model goes into the query unless the URL
already names one (``model=`` or Azure's ``deployment=``), a query string the user wrote is
kept as it is, and headers come from the call's options and the environment:

    DUALAGENT_HEADERS          headers for both agents' backends
    DUALAGENT_CALLER_HEADERS   the caller's backend only
    DUALAGENT_CS_HEADERS       the agent under test's backend only

one ``Name: value`` per line, as ``--header``, ``--caller-header`` and ``--cs-header`` take them
(a later source wins per header: environment, then the shared option, then the agent's).
Header values are secrets: the options keep them as :class:`pydantic.SecretStr`, excluded from
every dump (``batch.json``, ``call_metadata.json``), and they are never shown in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from dualagent.errors import InputError

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
HEADER_FIELDS = ("header", "caller_header", "cs_header")
"""The options that hold headers (secrets: excluded from every dump)."""
HEADER_ENV = {
    "header": "DUALAGENT_HEADERS",
    "caller_header": "DUALAGENT_CALLER_HEADERS",
    "cs_header": "DUALAGENT_CS_HEADERS",
}


def as_secret_headers(value: Any) -> SecretStr | None:
    """A header option as given (text, a mapping or a list of ``Name: value`` lines) kept as
    one secret text; checked by :func:`parse_headers` when the call is planned."""
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, Mapping):
        value = "\n".join(f"{name}: {text}" for name, text in value.items())
    elif isinstance(value, list | tuple):
        value = "\n".join(
            v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in value
        )
    return SecretStr(str(value))


def parse_headers(text: SecretStr | str | None, source: str) -> dict[str, str]:
    """``Name: value`` lines -> a dict; a bad line raises :class:`InputError` naming ``source``
    and the header's position, never its value."""
    raw = text.get_secret_value() if isinstance(text, SecretStr) else (text or "")
    headers: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name or any(c.isspace() for c in name) or not value.strip():
            raise InputError(
                f"{source}: header {number} is not written 'Name: value' (the value is not "
                "shown: it may be a secret)"
            )
        headers[name] = value.strip()
    return headers


def agent_headers(
    agent: str, options: Any, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The extra headers for ``agent``'s backend: environment, then the shared option, then the
    agent's own (a later source wins per header name)."""
    environ = os.environ if environ is None else environ
    merged: dict[str, str] = {}
    for field in ("header", f"{agent}_header"):
        env = HEADER_ENV[field]
        merged.update(parse_headers(environ.get(env), env))
    for field in ("header", f"{agent}_header"):
        flag = "--" + field.replace("_", "-")
        merged.update(parse_headers(getattr(options, field, None), flag))
    return merged


def secret_fields(model: Any) -> dict[str, SecretStr]:
    """The header options ``model`` holds (what a dump leaves out), to pass them on in memory."""
    return {n: getattr(model, n) for n in HEADER_FIELDS if getattr(model, n, None) is not None}


def with_model(url: str, model: str) -> str:
    """``url`` with ``model=`` added to its query unless it names one already (``model`` or
    Azure's ``deployment``); everything else of the URL is kept as written."""
    parts = urlsplit(url)
    names = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if names & {"model", "deployment"}:
        return url
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"model": model})))
