"""The transport seam: the URL's scheme picks what carries a session."""

from __future__ import annotations

import pytest

from dualagent.realtime.client import RealtimeConnectionError
from dualagent.realtime.transports import open_connection, transport_name


def test_transport_names_by_scheme() -> None:
    assert transport_name("ws://127.0.0.1:1/v1/realtime") == "websocket"
    assert transport_name("wss://api.example/v1/realtime") == "websocket"
    assert transport_name("memory://server/v1/realtime") == "memory"
    assert transport_name("twilio+ws://127.0.0.1:8765/stream") == "phone-stream"
    assert transport_name("http://127.0.0.1/") == "unknown"


async def test_unknown_scheme_is_refused_naming_the_choices_without_the_secret() -> None:
    with pytest.raises(RealtimeConnectionError) as info:
        await open_connection("http://user:s3cret@127.0.0.1:9/x")
    message = str(info.value)
    assert "s3cret" not in message
    assert "ws://" in message and "memory://" in message and "twilio+ws://" in message
