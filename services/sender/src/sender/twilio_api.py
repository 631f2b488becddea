"""The Twilio Messages API behind a small interface, through the real ``twilio`` SDK.

The SDK's asynchronous methods (``create_async``, ``list_async``) over its aiohttp client,
rather than its synchronous client in worker threads: against the simulator, at the sender's
concurrency (16), 1.3 to 3.9 times the creates per second at 0.5 to 0.7 of the median latency in
five runs on a loaded 2-CPU machine; alone (concurrency 1), from even to 3 times
(services/sender/bench/twilio_clients.py). With
``TWILIO_API_BASE_URL`` set, the HTTP client sends the SDK's requests there instead of
``https://api.twilio.com`` (the simulator locally and in tests), on the SDK's own code path.
"""

from __future__ import annotations

import asyncio
import base64
import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import twilio.rest.api.v2010.account  # noqa: F401  (preloaded: ``TwilioMessages``)
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
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
                     status_callback: str | None, content_sid: str | None = None,
                     content_variables: dict[str, str] | None = None,
                     media_url: str | None = None) -> str:
        """Send; answers the MessageSid or raises ``TwilioCallError``. With ``content_sid``
        (a template) the variables go instead of the body; ``media_url`` is attached. (The
        sender passes these three only when set.)"""
        ...

    async def find(self, credentials: Credentials, *, to: str, from_: str, body: str,
                   since: datetime, exclude: set[str], content_sid: str | None = None
                   ) -> list[str]:
        """The sids of messages with this body sent from ``from_`` to ``to`` since ``since``,
        oldest first (several when earlier replies had the same text). With ``content_sid``
        (a template: Twilio renders the body, and its Message resource does not name the
        ContentSid) every message sent from ``from_`` to ``to`` since ``since``."""
        ...

    async def aclose(self) -> None:
        """Release connections (at the service's stop)."""
        ...


# The Retry-After of the calling task's last response (the SDK's exception has no headers).
_RETRY_AFTER: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


class RewritingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The SDK's aiohttp client, optionally aimed at another base URL; it keeps each task's
    last ``Retry-After``."""

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") if base_url else None

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API):]
        auth = kwargs.pop("auth", None)
        if auth is not None:  # as a header: aiohttp deprecates the SDK's BasicAuth argument
            user, password = auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            kwargs["headers"] = {**(kwargs.get("headers") or {}),
                                 "Authorization": f"Basic {token}"}
        _RETRY_AFTER.set(None)
        response = await super().request(method, url, *args, **kwargs)
        _RETRY_AFTER.set((response.headers or {}).get("Retry-After"))
        return response


def _last_retry_after() -> float | None:
    raw = _RETRY_AFTER.get()
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


class TwilioMessages:
    """``MessagesApi`` over the ``twilio`` SDK's async methods: one HTTP client (one
    connection pool, opened on the first call), one SDK client per account and token. The
    Messages resource's modules, which the SDK imports lazily on the first call, are imported
    with this module: at the service's start, not in the first reply's latency (about a CPU
    second on a loaded machine without cached bytecode)."""

    def __init__(self, base_url: str | None = None, timeout_s: float = 10.0) -> None:
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._http: RewritingHttpClient | None = None
        self._clients: dict[Credentials, Client] = {}

    def _client(self, credentials: Credentials) -> Client:
        if self._http is None:  # aiohttp wants its session made inside the running loop
            self._http = RewritingHttpClient(self._base_url)
        found = self._clients.get(credentials)
        if found is None:
            found = Client(credentials.account_sid, credentials.auth_token,
                           http_client=self._http)
            self._clients[credentials] = found
        return found

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._clients.clear()

    async def create(self, credentials: Credentials, *, to: str, from_: str, body: str,
                     status_callback: str | None, content_sid: str | None = None,
                     content_variables: dict[str, str] | None = None,
                     media_url: str | None = None) -> str:
        client = self._client(credentials)
        options: dict[str, Any] = {"to": to, "from_": from_}
        if content_sid:  # Twilio renders the approved template; a body would be refused
            options["content_sid"] = content_sid
            options["content_variables"] = json.dumps(content_variables or {})
        elif body:
            options["body"] = body
        if media_url:
            options["media_url"] = [media_url]
        if status_callback:
            options["status_callback"] = status_callback
        try:
            async with asyncio.timeout(self._timeout_s):
                message = await client.messages.create_async(**options)
        except TwilioRestException as exc:
            raise TwilioCallError(exc.status, exc.code, _last_retry_after()) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TwilioCallError(None, None, detail=type(exc).__name__) from None
        return str(message.sid)

    async def find(self, credentials: Credentials, *, to: str, from_: str, body: str,
                   since: datetime, exclude: set[str], content_sid: str | None = None
                   ) -> list[str]:
        client = self._client(credentials)
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await client.messages.list_async(
                    to=to, from_=from_, date_sent_after=since, limit=100)
        except TwilioRestException as exc:
            raise TwilioCallError(exc.status, exc.code) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TwilioCallError(None, None, detail=type(exc).__name__) from None
        matches = [m for m in found
                   if (content_sid is not None or m.body == body) and m.sid not in exclude
                   and (m.date_created is None or m.date_created >= since)]
        return [str(m.sid) for m in reversed(matches)]  # Twilio lists newest first
