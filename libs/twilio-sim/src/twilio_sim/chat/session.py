"""One WhatsApp user talking to one business number through the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..client import SimClient


@dataclass
class Update:
    """A message to the user that is new, or whose status changed."""

    message: dict[str, Any]
    is_new: bool


@dataclass
class ChatSession:
    client: SimClient
    user: str
    business: str
    profile_name: str = "Sim User"
    cursor: int = 0
    _statuses: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        """Skip what was sent to this user before now."""
        answer = await self.client.inbox(self.user)
        self.cursor = answer["cursor"]
        self._statuses = {m["sid"]: m["status"] for m in answer["messages"]}

    async def send_text(self, text: str) -> dict[str, Any]:
        return await self.client.inbound(self.user, self.business, text,
                                         profile_name=self.profile_name)

    async def send_voice(self, content_type: str, data: bytes) -> dict[str, Any]:
        return await self.client.inbound(self.user, self.business, media=[(content_type, data)],
                                         profile_name=self.profile_name)

    async def poll(self, wait_s: float) -> list[Update]:
        """Changes from the business number, waiting up to ``wait_s`` for the first."""
        answer = await self.client.inbox(self.user, self.cursor, wait_s)
        self.cursor = answer["cursor"]
        updates = []
        for message in answer["messages"]:
            if message["from"] != self.business:
                continue
            previous = self._statuses.get(message["sid"])
            self._statuses[message["sid"]] = message["status"]
            if previous != message["status"]:
                updates.append(Update(message, is_new=previous is None))
        return updates

    async def follow(self, poll_s: float = 25.0) -> AsyncIterator[Update]:
        while True:
            for update in await self.poll(poll_s):
                yield update

    async def replies(self, timeout_s: float, settle_s: float) -> list[dict[str, Any]]:
        """New messages: up to ``timeout_s`` for the first, then until ``settle_s`` passes quiet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        found: list[dict[str, Any]] = []
        while (remaining := deadline - loop.time()) > 0:
            new = [u.message for u in await self.poll(remaining) if u.is_new]
            if new:
                # Parts of one reply arrive one after another: wait a little for the next.
                found += new
                deadline = loop.time() + settle_s
        return found
