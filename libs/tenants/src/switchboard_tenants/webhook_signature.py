"""Signatures of the webhooks Switchboard sends to a tenant's own system (ADR 0022).

The sender signs ``f"{timestamp}.{body}"`` with HMAC-SHA256 and the tenant's secret, as
Stripe and Slack sign theirs; the receiver recomputes it over the raw body, compares in
constant time and refuses an old timestamp, so a captured request cannot be replayed later::

    from switchboard_tenants.webhook_signature import verify

    ok = verify(secret, request.headers["X-Switchboard-Timestamp"],
                request.headers["X-Switchboard-Signature"], raw_body)

The signature header may carry several ``v1=`` values separated by commas (e.g. during a
secret change); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Signature"
EVENT_ID_HEADER = "X-Switchboard-Event-Id"

SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """The ``X-Switchboard-Signature`` value: ``v1=<hex HMAC-SHA256(secret, "ts.body")>``."""
    return f"{SCHEME}={_digest(secret, str(timestamp), _as_bytes(body))}"


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: str | bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True if one ``v1`` signature matches and the timestamp is within ``tolerance_s``
    of ``now`` (either way: a clock ahead is no better than a replay)."""
    if not timestamp_header or not signature_header:
        return False
    stamp = timestamp_header.strip()
    if not (stamp.isascii() and stamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    expected = _digest(secret, stamp, _as_bytes(body))
    matched = False
    for part in signature_header.split(","):
        scheme, _, value = part.strip().partition("=")
        # Compare every candidate: the time taken says nothing about which one matched.
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected.encode()):
            matched = True
    return matched
