"""What a running service is configured with: :class:`ServiceSettings` (the ``serve`` flags).

The one rule with security weight lives here: a service bound to anything but a loopback
address needs a token (``--token`` or ``DUALAGENT_TOKEN``); a token, once set, is checked on
every request wherever the service is bound.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from dualagent.call.options import MAX_DURATION_S
from dualagent.errors import InputError, describe_validation_error

TOKEN_ENV = "DUALAGENT_TOKEN"
DEFAULT_OUTPUT_DIR = "agent_conversations"
DEFAULT_BATCH_DIR = "batch_runs"


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: assume it is reachable from elsewhere


class ServiceSettings(BaseModel):
    """Everything ``dualagent serve`` takes; bad values raise :class:`InputError` (one line)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_conversations: int = Field(default=10, ge=1, le=1000)
    output_dir: Path = Path(DEFAULT_OUTPUT_DIR)
    batch_dir: Path = Path(DEFAULT_BATCH_DIR)
    retention_days: float = Field(default=7.0, gt=0)
    # Secret: never shown by repr(), str() or model_dump() (pydantic masks it).
    token: SecretStr | None = None
    # A call is stopped (and finalised) after this much wall time, whatever its pace.
    max_session_s: float = Field(default=float(MAX_DURATION_S), gt=0, le=MAX_DURATION_S)
    # Largest websocket message (and HTTP request body) a client may send, in bytes.
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    # Where batch calls run: "local" (this process, the shared server) or dask://HOST:PORT.
    executor: str = "local"
    warm_engines: bool = True  # load the speech engines at start (the first call is fast)

    @field_validator("token")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("too short; valid: at least 8 characters")
        return value

    @property
    def token_required(self) -> bool:
        return self.token is not None

    @classmethod
    def build(cls, **values: Any) -> ServiceSettings:
        """Settings from keyword values; a bad value or a public bind without a token raises
        :class:`InputError` naming the problem."""
        values = {k: v for k, v in values.items() if v is not None}
        if values.get("token") == "":
            values.pop("token")
        try:
            settings = cls(**values)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, model=cls)) from None
        settings.check_bind()
        return settings

    def check_bind(self) -> None:
        """Refuse to serve a non-loopback address without a token."""
        if not is_loopback(self.host) and self.token is None:
            raise InputError(
                f"binding {self.host!r} makes the service reachable from other machines: "
                f"give a token (--token or {TOKEN_ENV}), or bind 127.0.0.1"
            )

    def public_view(self) -> dict[str, Any]:
        """The settings as shown to clients (no token, only whether one is required)."""
        return {
            "max_conversations": self.max_conversations,
            "max_session_s": self.max_session_s,
            "retention_days": self.retention_days,
            "token_required": self.token_required,
            "executor": self.executor.split("://")[0],
        }
