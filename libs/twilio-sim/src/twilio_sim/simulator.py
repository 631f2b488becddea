"""The running simulator: its state, its outbound HTTP client and its background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
from fastapi import Request

from .config import SimConfig
from .state import SimState


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.state = SimState(config)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Twilio does not follow redirects from webhooks; neither do we.
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Keep a reference so the task is not garbage-collected mid-flight.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def base_url(self, request: Request) -> str:
        """Where clients reach us: configured, else the URL this request came in on."""
        return (self.state.config.public_url or str(request.base_url)).rstrip("/")


def get_simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator
