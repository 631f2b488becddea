"""An async client for the simulator's ``/sim`` API: what tests and the chat CLI call."""

from __future__ import annotations

import base64
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx


class SimClient:
    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def __aenter__(self) -> SimClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    async def add_account(self, sid: str, auth_token: str) -> None:
        await self._call("POST", "/sim/accounts", json={"sid": sid, "auth_token": auth_token})

    async def add_number(
        self, address: str, account_sid: str, webhook_url: str | None,
        messaging_service_sid: str | None = None,
    ) -> None:
        await self._call("POST", "/sim/numbers", json={
            "address": address, "account_sid": account_sid, "webhook_url": webhook_url,
            "messaging_service_sid": messaging_service_sid,
        })

    async def queue_failure(self, kind: str, **options: Any) -> list[dict[str, Any]]:
        """Options: count, to, retry_after_s, hang_s, created (see ``twilio_sim.failures``)."""
        answer = await self._call("POST", "/sim/failures", json={"kind": kind, **options})
        pending: list[dict[str, Any]] = answer["pending"]
        return pending

    async def inbound(
        self, from_: str, to: str, body: str = "", *,
        media: list[tuple[str, bytes]] | None = None, profile_name: str = "Sim User",
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send as a WhatsApp user; answers message_sid, status_code (the webhook's), attempts."""
        payload = {
            "from": from_, "to": to, "body": body, "profile_name": profile_name,
            "media": [{"content_type": ct, "data_b64": base64.b64encode(data).decode()}
                      for ct, data in media or []],
            "extra": extra or {},
        }
        answer: dict[str, Any] = await self._call("POST", "/sim/inbound", json=payload)
        return answer

    async def redeliver(self, message_sid: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call(
            "POST", f"/sim/inbound/{message_sid}/redeliver")
        return answer

    async def messages(self) -> dict[str, Any]:
        """``{"messages": [...], "attempts": [...]}``: everything the simulator saw."""
        answer: dict[str, Any] = await self._call("GET", "/sim/messages")
        return answer

    async def upload_media(
        self, content_type: str, data: bytes, account_sid: str | None = None
    ) -> dict[str, str]:
        answer: dict[str, str] = await self._call("POST", "/sim/media", json={
            "content_type": content_type, "data_b64": base64.b64encode(data).decode(),
            "account_sid": account_sid,
        })
        return answer

    async def inbox(self, address: str, after: int = 0, wait_s: float = 0.0) -> dict[str, Any]:
        """Messages to ``address`` changed after the cursor: ``{"messages", "cursor"}``."""
        answer: dict[str, Any] = await self._call(
            "GET", f"/sim/inbox/{quote(address, safe='')}",
            params={"after": after, "wait": wait_s}, timeout=wait_s + 10,
        )
        return answer

    async def set_last_inbound(self, user: str, number: str, age_s: float) -> bool:
        """The user last wrote to the number ``age_s`` seconds ago; answers whether the
        24-hour window is open now."""
        answer = await self._call("POST", "/sim/last-inbound",
                                  json={"user": user, "number": number, "age_s": age_s})
        return bool(answer["window_open"])

    async def create_template(
        self, account_sid: str, auth_token: str, name: str, body: str, *,
        language: str = "en", variables: dict[str, str] | None = None,
    ) -> str:
        """Register a text template through the Content API, as the account itself would
        (``client.content.v1.contents.create``); answers its ContentSid (``HX...``)."""
        answer = await self._call("POST", "/v1/Content", auth=(account_sid, auth_token), json={
            "friendly_name": name, "language": language, "variables": variables or {},
            "types": {"twilio/text": {"body": body}},
        })
        return str(answer["sid"])

    async def reset(self) -> None:
        await self._call("POST", "/sim/reset")
