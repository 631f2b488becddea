"""Downloading a voice note from Twilio: authenticated, SSRF-safe, size-capped, with timeouts.

One attempt (``MediaClient.fetch``):

1. GET the media URL (already checked by ``media_url.check_media_url``) with the tenant's
   AccountSid and auth token as basic auth.
2. Follow at most ``max_redirects`` redirects by hand, each target checked against the
   allow-list before any request is made to it. Credentials go only to the media URL's own
   origin: never to the CDN host Twilio redirects to.
3. Refuse a Content-Type that is not voice-note audio, and a Content-Length over the cap,
   before reading the body; then read it in chunks and stop as soon as the cap is passed, so
   an oversized file is never downloaded whole.

Each request has connect and read timeouts; the whole attempt, redirects included, a total one.
``download`` retries transient failures within the delivery (``retry_delays_s``, honouring
Retry-After up to a cap); the caller decides what the last failure means.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from switchboard_runtime.http import retry_after
from switchboard_runtime.telemetry import get_logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from .audio import audio_type_allowed
from .failures import (
    REJECTED,
    TOO_LARGE,
    TYPE_UNSUPPORTED,
    UNAUTHORIZED,
    NotFoundYet,
    TranscriptionFailure,
    TransientFailure,
)
from .media_url import AllowList, check_redirect, same_origin
from .metrics import DOWNLOAD_BYTES, DOWNLOAD_SECONDS, MEDIA_RETRIES

log = get_logger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Generic types a CDN may answer with; the bytes then speak for themselves (decoding checks).
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    allowed: AllowList
    max_bytes: int
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float = 60.0
    max_redirects: int = 3
    retry_delays_s: Sequence[float] = (1.0, 3.0)
    retry_after_max_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str | None
    attempts: int = 1


class StopOnLongRetryAfter(stop_base):
    """A server asking for a long pause gets it from JetStream's redelivery instead."""

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome else None
        return (isinstance(exc, TransientFailure) and exc.retry_after_s is not None
                and exc.retry_after_s > self.max_s)


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class MediaClient:
    """One HTTP client per process (connection pooling); no redirects, no proxies from the
    environment, no .netrc: nothing but what ``fetch`` decides is sent anywhere."""

    def __init__(self, policy: DownloadPolicy, proxy: str | None = None) -> None:
        self.policy = policy
        self._http = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, proxy=proxy,
            timeout=httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s),
            headers={"Accept-Encoding": "identity", "User-Agent": "switchboard-transcription"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def download(self, url: httpx.URL, credentials: tuple[str, str]) -> Media:
        """The media, retrying transient failures; raises the last failure."""

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            delays = self.policy.retry_delays_s
            delay = delays[min(state.attempt_number, len(delays)) - 1]
            if isinstance(exc, TransientFailure) and exc.retry_after_s is not None:
                delay = max(delay, exc.retry_after_s)
            return delay

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            kind = exc.kind if isinstance(exc, TransientFailure) else type(exc).__name__
            MEDIA_RETRIES.labels(kind).inc()
            log.info("media download failed, retrying", kind=kind,
                     attempt=state.attempt_number,
                     retry_in_s=round(state.next_action.sleep if state.next_action else 0, 2))

        async for attempt in AsyncRetrying(
            stop=stop_any(stop_after_attempt(len(self.policy.retry_delays_s) + 1),
                          StopOnLongRetryAfter(self.policy.retry_after_max_s)),
            wait=wait,
            retry=retry_if_exception_type(TransientFailure),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                media = await self.fetch(url, credentials)
                return Media(media.data, media.content_type, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def fetch(self, url: httpx.URL, credentials: tuple[str, str]) -> Media:
        """One attempt, redirects included."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.policy.total_timeout_s):
                media = await self._follow(url, httpx.BasicAuth(*credentials))
        except (TimeoutError, httpx.TimeoutException):  # the total, or one request's
            DOWNLOAD_SECONDS.labels("timeout").observe(time.perf_counter() - started)
            raise TransientFailure("timeout") from None
        except httpx.TransportError:
            DOWNLOAD_SECONDS.labels("connection_error").observe(time.perf_counter() - started)
            raise TransientFailure("connection_error") from None
        except (TranscriptionFailure, TransientFailure) as exc:
            outcome = exc.reason if isinstance(exc, TranscriptionFailure) else exc.kind
            DOWNLOAD_SECONDS.labels(outcome).observe(time.perf_counter() - started)
            raise
        DOWNLOAD_SECONDS.labels("ok").observe(time.perf_counter() - started)
        DOWNLOAD_BYTES.observe(len(media.data))
        return media

    async def _follow(self, origin: httpx.URL, auth: httpx.BasicAuth) -> Media:
        current = origin
        for _hop in range(self.policy.max_redirects + 1):
            authenticated = same_origin(current, origin)
            request = self._http.build_request("GET", current)
            response = await self._http.send(
                request, auth=auth if authenticated else None, stream=True)
            try:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    current = check_redirect(current, response.headers["location"],
                                             self.policy.allowed)
                    continue
                self._check_status(response, authenticated)
                return await self._read(response)
            finally:
                await response.aclose()
        raise TranscriptionFailure(REJECTED, f"more than {self.policy.max_redirects} redirects")

    @staticmethod
    def _check_status(response: httpx.Response, authenticated: bool) -> None:
        status = response.status_code
        if status == 200:
            return
        if status in (401, 403) and authenticated:
            raise TranscriptionFailure(UNAUTHORIZED, f"http {status}")
        if status == 404:
            raise NotFoundYet()
        if status == 403:  # an expired or refused CDN link: a new one comes with the next try
            raise TransientFailure("cdn_forbidden")
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientFailure(f"http_{status}", retry_after(response.headers))
        raise TranscriptionFailure(REJECTED, f"http {status}")

    async def _read(self, response: httpx.Response) -> Media:
        content_type = response.headers.get("content-type")
        kind = base_type(content_type)
        if kind and kind not in GENERIC_TYPES and not audio_type_allowed(kind):
            raise TranscriptionFailure(TYPE_UNSUPPORTED, f"served as {kind}")
        cap = self.policy.max_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise TranscriptionFailure(TOO_LARGE, f"{declared} bytes declared, cap {cap}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > cap:  # stop reading: closing the response drops the connection
                raise TranscriptionFailure(TOO_LARGE, f"over {cap} bytes while streaming")
        return Media(bytes(body), content_type)
