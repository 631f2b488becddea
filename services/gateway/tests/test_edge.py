"""The edge under stress: proxies, NATS outages, floods and hostile input."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

import httpx
import pytest
from gateway.main import build
from gateway.settings import GatewaySettings
from gateway_helpers import (
    INBOUND_PATH,
    PUBLIC,
    USER,
    inbound_params,
    post,
    signed,
    stored,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from switchboard_runtime import ConfigError


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Behind a load balancer at 10.0.0.0/8 that sets X-Forwarded-*; no PUBLIC_BASE_URL.
    return {"public_base_url": None, "trusted_proxies": "10.0.0.0/8"}


def via(gateway, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gateway.app, client=(peer, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.internal:8080")


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}


async def test_behind_a_trusted_proxy_the_public_url_is_what_counts(gateway, js) -> None:
    params = inbound_params()
    async with via(gateway, "10.1.2.3") as http:
        # Signed for the internal URL this process sees: refused.
        internal = signed(params, url="http://gateway.internal:8080" + INBOUND_PATH)
        assert (await post(http, params, {**internal, **FORWARDED})).status_code == 403
        # Signed for the public URL Twilio called: accepted.
        assert (await post(http, params, {**signed(params), **FORWARDED})).status_code == 200
    assert len(await stored(js)) == 1


async def test_forwarded_headers_from_anyone_else_are_ignored(gateway, js) -> None:
    params = inbound_params()
    async with via(gateway, "198.51.100.9") as http:
        response = await post(http, params, {**signed(params), **FORWARDED})
    assert response.status_code == 403
    assert await stored(js) == []


async def test_twilio_signs_https_without_the_port(gateway, js) -> None:
    params = inbound_params()
    async with via(gateway, "10.1.2.3") as http:
        headers = {**signed(params), "X-Forwarded-Proto": "https",
                   "X-Forwarded-Host": "hooks.example.com:443"}
        assert (await post(http, params, headers)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_nats_down_means_503_never_200_and_back_up_means_accepted(
    client, js, nats_server, settings_overrides
) -> None:
    nats_server.stop()
    params = inbound_params()
    response = await post(client, params, signed(params))
    assert response.status_code == 503
    assert response.text == "temporarily unavailable\n"
    nats_server.start()  # same port, same store
    for _ in range(100):
        response = await post(client, params, signed(params))
        if response.status_code == 200:
            break
        assert response.status_code == 503
        await asyncio.sleep(0.1)
    assert response.status_code == 200
    [event] = await stored(js)
    assert event.correlation_id == params["MessageSid"]


@pytest.mark.parametrize("settings_overrides", [{"sender_rate_limit": "5/minute"}])
async def test_a_flood_from_one_sender_is_cut_while_others_get_through(client, js,
                                                                       settings_overrides
                                                                       ) -> None:
    codes = []
    for _ in range(10):
        params = inbound_params()
        codes.append((await post(client, params, signed(params))).status_code)
    assert codes == [200] * 5 + [429] * 5
    other = inbound_params(From="whatsapp:+447700900999")
    assert (await post(client, other, signed(other))).status_code == 200
    assert len(await stored(js)) == 6


@pytest.mark.parametrize("settings_overrides", [{"ip_rate_limit": "3/second"}])
async def test_per_ip_limit_applies_before_the_signature_check(client, js,
                                                               settings_overrides) -> None:
    codes = [(await post(client, inbound_params(), {"Content-Type":
                                                    "application/x-www-form-urlencoded"}))
             .status_code for _ in range(5)]
    assert codes == [403, 403, 403, 429, 429]


TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
FIELD_NAMES = {"MessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
               "MediaContentType0", "MessagingServiceSid", "ProfileName", "WaId",
               "MessageStatus", "ErrorCode", "X"}
FIELDS = st.sampled_from(["MessageSid", "AccountSid", "From", "To", "Body", "NumMedia",
                          "MediaUrl0", "MediaContentType0", "MessagingServiceSid",
                          "ProfileName", "WaId", "MessageStatus", "ErrorCode", "X"])
VALUES = st.one_of(st.text(max_size=300), st.sampled_from(["", "0", "11", "-1", "whatsapp:+1",
                                                          USER, "AC" + "a" * 32]))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.dictionaries(FIELDS, VALUES, max_size=6), sign=st.booleans(),
       path=st.sampled_from(["/twilio/whatsapp/inbound", "/twilio/whatsapp/status"]))
async def test_fuzzed_forms_never_500_nor_leak_internals(client, overrides, sign, path
                                                         ) -> None:
    params = {**inbound_params(), **overrides}
    headers = signed(params, url=PUBLIC + path) if sign else {
        "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post(path, content=urlencode(params), headers=headers)
    assert response.status_code in (200, 400, 403, 429)
    if response.status_code == 200:
        assert response.text == TWIML
        return
    # A short fixed reason that names at most a parameter: no traceback, no echoed input.
    assert re.fullmatch(r"[a-z][A-Za-z0-9 /_-]{0,60}\n", response.text), response.text
    reason = response.text.strip()
    reason_words = set(reason.split())
    assert not any(v in reason_words for v in overrides.values() if v not in FIELD_NAMES)


def test_unsigned_escape_hatch_is_refused_in_production(monkeypatch) -> None:
    for name, value in {"SWITCHBOARD_ENV": "production", "NATS_URL": "nats://n:4222",
                        "PUBLIC_BASE_URL": PUBLIC, "SB_TENANT_KEYS": "k",
                        "ALLOW_UNSIGNED_WEBHOOKS": "true"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="ALLOW_UNSIGNED_WEBHOOKS must be off"):
        GatewaySettings()


def test_production_needs_the_public_url_and_the_tenant_keys(monkeypatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "production")
    monkeypatch.setenv("NATS_URL", "nats://n:4222")
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        GatewaySettings()
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    with pytest.raises(ConfigError, match="SB_TENANT_KEYS or SB_TENANT_KEYS_FILE"):
        GatewaySettings()


async def test_unsigned_escape_hatch_works_only_when_asked(nats_url, tenants, js) -> None:
    service = build(GatewaySettings(nats_url=nats_url, allow_unsigned_webhooks=True))
    transport = httpx.ASGITransport(app=service.app)
    async with service.running(), httpx.AsyncClient(transport=transport, base_url="http://gw"
                                                    ) as http:
        params = inbound_params()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await post(http, params, headers)).status_code == 200
