"""A load balancer in front of the gateway's replicas, as a Kubernetes Service would be: Twilio
calls one URL whichever replica is alive and ready. A replica that refuses the connection, or
whose ``/readyz`` is not 200 (a restarted one serves its health endpoints while it waits on
NATS, before it can take webhooks), is skipped; one that dies mid-request makes the balancer
answer 502, which Twilio retries."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
from switchboard_devstack.serving import read_body

READY_TIMEOUT_S = 1.0
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Balancer:
    def __init__(self, upstreams: Callable[[], list[str]]) -> None:
        self._upstreams = upstreams  # the replicas' base URLs now (they change on restarts)
        self._turn = itertools.count()
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = await read_body(receive)
        status, headers, content = await self._forward(scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(timeout=20.0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _ready(self, base: str) -> bool:
        """As a readiness probe decides whether a Service routes to a pod (asked per request
        here rather than every few seconds)."""
        assert self._client is not None
        try:
            response = await self._client.get(f"{base}/readyz", timeout=READY_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _forward(self, scope: dict[str, Any], body: bytes
                       ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self._client is not None
        path = scope["path"] + (f"?{scope['query_string'].decode()}"
                                if scope["query_string"] else "")
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in HOP_BY_HOP]
        upstreams = self._upstreams()
        start = next(self._turn)
        for offset in range(len(upstreams)):
            base = upstreams[(start + offset) % len(upstreams)]
            if not await self._ready(base):
                continue
            try:
                response = await self._client.request(scope["method"], base + path,
                                                      headers=headers, content=body)
            except httpx.ConnectError:
                continue  # not listening (killed, restarting): the next replica
            except httpx.HTTPError:
                return 502, [], b""  # died mid-request: the caller retries
            kept = [(k.encode(), v.encode()) for k, v in response.headers.items()
                    if k.lower() not in HOP_BY_HOP]
            return response.status_code, kept, response.content
        return 503, [], b""
