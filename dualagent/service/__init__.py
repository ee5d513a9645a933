"""``dualagent serve``: calls over the network and a live monitor in the browser.

- :mod:`~dualagent.service.settings`: :class:`ServiceSettings` (a public bind needs a token)
- :mod:`~dualagent.service.app`: :func:`create_app`, the HTTP routes, start and shutdown
- :mod:`~dualagent.service.ws`: ``/agent-conversation`` and watching a running call
- :mod:`~dualagent.service.calls`: parameters -> ``CallOptions``, capacity, one task per call
- :mod:`~dualagent.service.live`: live events and their fan-out, the mixed audio
- :mod:`~dualagent.service.batches`: ``POST /batches`` / ``GET /batches/{id}``
- :mod:`~dualagent.service.retention`: deleting old recordings (``dualagent clean``)
- :mod:`~dualagent.service.security`: the token check, secrets kept out of logs
- ``static/``: the monitor page (plain HTML + JS)
"""

from typing import Any

__all__ = ["ServiceSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported when first used: the ``dualagent`` command registers ``serve``'s flags from
    # the settings module on every start, and FastAPI is not what a ``dualagent run`` needs.
    if name == "create_app":
        from dualagent.service.app import create_app

        return create_app
    if name == "ServiceSettings":
        from dualagent.service.settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
