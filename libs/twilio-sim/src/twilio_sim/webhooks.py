"""Signed form POSTs to customer URLs, as Twilio sends webhooks and status callbacks.

Twilio reads connection overrides from the URL's fragment (``#rc=3&rp=5xx,ct&ct=2000&rt=8000``):
``rc`` retry count (max 5), ``rp`` retry policy (``4xx``, ``5xx``, ``ct`` connect failure, ``rt``
read timeout, ``all``), ``ct``/``rt`` timeouts in ms (read timeout at most 15 s). Without them it
retries once, on a connection failure only. The fragment is never sent nor signed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

USER_AGENT = "TwilioProxy/1.1"


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 1
    retry_on: frozenset[str] = frozenset({"ct"})
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0


@dataclass
class DeliveryResult:
    status_code: int | None
    attempts: int
    error: str | None = None
    body: str = ""
    status_codes: list[int | None] = field(default_factory=list)


def split_fragment(url: str) -> tuple[str, RetryPolicy]:
    """The URL Twilio requests (and signs), and the retry policy from the fragment."""
    parts = urlsplit(url)
    target = urlunsplit(parts._replace(fragment=""))
    overrides = {k: v[-1] for k, v in parse_qs(parts.fragment).items()}
    policy = RetryPolicy()
    if "rc" in overrides:
        policy = RetryPolicy(retries=min(int(overrides["rc"]), 5), retry_on=policy.retry_on)
    if "rp" in overrides:
        kinds = frozenset(overrides["rp"].split(","))
        if "all" in kinds:
            kinds = frozenset({"4xx", "5xx", "ct", "rt"})
        policy = RetryPolicy(policy.retries, kinds)
    return target, RetryPolicy(
        policy.retries,
        policy.retry_on,
        int(overrides.get("ct", 5000)) / 1000,
        min(int(overrides.get("rt", 15000)), 15000) / 1000,
    )


def signing_url(url: str) -> str:
    """Over HTTPS Twilio signs the URL without an explicit port."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.port is not None:
        host = parts.hostname or ""
        netloc = (parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else "") + host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def sign(url: str, params: dict[str, str], auth_token: str) -> str:
    return str(RequestValidator(auth_token).compute_signature(signing_url(url), params))


async def post_signed(
    client: httpx.AsyncClient,
    url: str,
    params: dict[str, str],
    auth_token: str,
    idempotency_token: str,
    retry_delay_s: float,
) -> DeliveryResult:
    """POST the form as Twilio would, retrying as the URL's fragment asks."""
    target, policy = split_fragment(url)
    headers = {
        "X-Twilio-Signature": sign(target, params, auth_token),
        "I-Twilio-Idempotency-Token": idempotency_token,
        "User-Agent": USER_AGENT,
        "X-Home-Region": "us1",
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
    }
    timeout = httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s)
    result = DeliveryResult(status_code=None, attempts=0)
    for attempt in range(policy.retries + 1):
        if attempt:
            await asyncio.sleep(retry_delay_s)
        result.attempts += 1
        failure_kind: str | None
        try:
            response = await client.post(target, data=params, headers=headers, timeout=timeout)
        except httpx.ConnectError as exc:
            result.status_code, result.error, failure_kind = None, f"connect failed: {exc}", "ct"
        except httpx.TimeoutException as exc:
            kind = "ct" if isinstance(exc, httpx.ConnectTimeout) else "rt"
            result.status_code, result.error, failure_kind = None, f"timeout ({kind})", kind
        else:
            status = response.status_code
            result.status_code, result.body, result.error = status, response.text, None
            failure_kind = f"{status // 100}xx" if status >= 400 else None
        result.status_codes.append(result.status_code)
        if failure_kind is None or failure_kind not in policy.retry_on:
            break
    return result
