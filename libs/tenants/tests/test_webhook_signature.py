from __future__ import annotations

import hashlib
import hmac

from switchboard_tenants.webhook_signature import sign, verify

SECRET = "whsec-0123456789abcdef"
BODY = b'{"type":"HandoffRequested","tenant_id":"acme"}'
NOW = 1_800_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"v1={expected}"
    assert sign(SECRET, str(NOW), BODY.decode()) == sign(SECRET, NOW, BODY)


def test_verify_accepts_its_own_signature_within_the_tolerance() -> None:
    signature = sign(SECRET, NOW, BODY)
    assert verify(SECRET, str(NOW), signature, BODY, now=NOW)
    assert verify(SECRET, str(NOW), signature, BODY.decode(), now=NOW + 299)
    # Several signatures (e.g. during a secret change): one match is enough.
    assert verify(SECRET, str(NOW), f"v1=00ff, {signature}", BODY, now=NOW)


def test_verify_refuses_a_wrong_secret_a_changed_body_or_timestamp() -> None:
    signature = sign(SECRET, NOW, BODY)
    assert not verify("another-secret-value", str(NOW), signature, BODY, now=NOW)
    assert not verify(SECRET, str(NOW), signature, BODY + b" ", now=NOW)
    assert not verify(SECRET, str(NOW + 1), signature, BODY, now=NOW)
    assert not verify(SECRET, str(NOW), signature.replace("v1=", "v0="), BODY, now=NOW)


def test_verify_refuses_old_and_future_timestamps() -> None:
    signature = sign(SECRET, NOW, BODY)
    assert not verify(SECRET, str(NOW), signature, BODY, now=NOW + 301)  # a replay
    assert not verify(SECRET, str(NOW), signature, BODY, now=NOW - 301)
    assert verify(SECRET, str(NOW), signature, BODY, tolerance_s=600, now=NOW + 500)


def test_verify_refuses_missing_or_malformed_headers() -> None:
    signature = sign(SECRET, NOW, BODY)
    for timestamp, sig in ((None, signature), (str(NOW), None), ("", signature),
                           ("abc", signature), ("-5", signature), (str(NOW), "")):
        assert not verify(SECRET, timestamp, sig, BODY, now=NOW)
