"""Someone else's HTTP endpoint, for tests: a tenant's own system receiving our webhooks.

It records every request (headers, case-insensitive, and the raw body) and answers each with
the next scripted status (then 204), so a test can make it fail a few times, or always.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.datastructures import Headers

from .serving import read_body, serve_here


class Receiver:
    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[Headers, bytes]] = []
        self.url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.requests.append((Headers(scope=scope), body))
        status = self.statuses.pop(0) if self.statuses else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def receiving(statuses: Iterable[int] = (), path: str = "/hook"
                    ) -> AsyncIterator[Receiver]:
    """A receiver on a free local port; ``receiver.url`` is where to POST."""
    receiver = Receiver(statuses)
    async with serve_here(receiver) as base_url:
        receiver.url = f"{base_url}{path}"
        yield receiver
