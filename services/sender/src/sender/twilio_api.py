"""The Twilio Messages API behind a small interface, through the real ``twilio`` SDK.

The SDK's client is synchronous; calls run in a worker thread (``asyncio.to_thread``). With
``TWILIO_API_BASE_URL`` set, the SDK's HTTP client sends its requests there instead of
``https://api.twilio.com`` (the simulator locally and in tests), on the SDK's own code path.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"


@dataclass(frozen=True, slots=True)
class Credentials:
    account_sid: str
    auth_token: str

    def __repr__(self) -> str:
        return f"Credentials(account_sid={self.account_sid!r})"


class TwilioCallError(Exception):
    """A Messages API call that failed: HTTP status and Twilio code (None: transport error)."""

    def __init__(self, status: int | None, code: int | None, retry_after_s: float | None = None,
                 detail: str = "") -> None:
        super().__init__(f"twilio call failed: status={status} code={code} {detail}".strip())
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s


class MessagesApi(Protocol):
    async def create(self, credentials: Credentials, *, to: str, from_: str, body: str,
                     status_callback: str | None) -> str:
        """Send; answers the MessageSid or raises ``TwilioCallError``."""
        ...

    async def find(self, credentials: Credentials, *, to: str, from_: str, body: str,
                   since: datetime, exclude: set[str]) -> str | None:
        """The sid of a message with this body sent from ``from_`` to ``to`` since ``since``."""
        ...


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The SDK's HTTP client, optionally aimed at another base URL; it keeps each thread's
    last ``Retry-After`` (the SDK's exception does not carry headers)."""

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None
        self._local = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API):]
        self._local.retry_after = None
        response = super().request(method, url, *args, **kwargs)
        headers = response.headers or {}
        self._local.retry_after = headers.get("Retry-After")
        return response

    def last_retry_after(self) -> float | None:
        raw = getattr(self._local, "retry_after", None)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None


class TwilioMessages:
    """``MessagesApi`` over the ``twilio`` SDK, one client per account and token."""

    def __init__(self, base_url: str | None = None, timeout_s: float = 10.0) -> None:
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._clients: dict[Credentials, tuple[Client, RewritingHttpClient]] = {}

    def _client(self, credentials: Credentials) -> tuple[Client, RewritingHttpClient]:
        found = self._clients.get(credentials)
        if found is None:
            http = RewritingHttpClient(self._base_url, timeout=self._timeout_s)
            found = (Client(credentials.account_sid, credentials.auth_token, http_client=http),
                     http)
            self._clients[credentials] = found
        return found

    async def create(self, credentials: Credentials, *, to: str, from_: str, body: str,
                     status_callback: str | None) -> str:
        client, http = self._client(credentials)

        def call() -> str:
            options: dict[str, Any] = {"to": to, "from_": from_, "body": body}
            if status_callback:
                options["status_callback"] = status_callback
            try:
                message = client.messages.create(**options)
            except TwilioRestException as exc:
                raise TwilioCallError(exc.status, exc.code, http.last_retry_after()) from None
            except requests.RequestException as exc:
                raise TwilioCallError(None, None, detail=type(exc).__name__) from None
            return str(message.sid)

        return await asyncio.to_thread(call)

    async def find(self, credentials: Credentials, *, to: str, from_: str, body: str,
                   since: datetime, exclude: set[str]) -> str | None:
        client, _ = self._client(credentials)

        def call() -> str | None:
            try:
                found = client.messages.list(to=to, from_=from_, date_sent_after=since,
                                             limit=100)
            except TwilioRestException as exc:
                raise TwilioCallError(exc.status, exc.code) from None
            except requests.RequestException as exc:
                raise TwilioCallError(None, None, detail=type(exc).__name__) from None
            matches = [m for m in found
                       if m.body == body and m.sid not in exclude
                       and (m.date_created is None or m.date_created >= since)]
            # Newest first: the oldest match is the one the ambiguous attempt created.
            return str(matches[-1].sid) if matches else None

        return await asyncio.to_thread(call)
