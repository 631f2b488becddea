from __future__ import annotations

import asyncio

import httpx
import pytest
from gateway.main import build
from gateway.settings import GatewaySettings
from gateway_helpers import (
    ACCOUNT,
    INBOUND_PATH,
    NUMBER,
    OTHER_TOKEN,
    PUBLIC,
    STATUS_PATH,
    USER,
    inbound_params,
    post,
    sid,
    signed,
    stored,
)

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def test_signed_message_is_stored_then_answered_with_empty_twiml(client, js) -> None:
    params = inbound_params()
    response = await post(client, params, signed(params))
    assert response.status_code == 200
    assert response.text == TWIML
    assert response.headers["content-type"].startswith("text/xml")
    [event] = await stored(js)
    assert event.type == "InboundMessageReceived"
    assert event.tenant_id == "clinic"
    assert event.correlation_id == params["MessageSid"]
    assert event.data["body"] == params["Body"]
    assert event.data["from_address"] == USER


@pytest.mark.parametrize("case", ["wrong token", "missing", "other tenant", "tampered"])
async def test_bad_signatures_are_refused_and_store_nothing(client, js, case) -> None:
    params = inbound_params()
    headers = signed(params)
    if case == "wrong token":
        headers = signed(params, token="f" * 32)
    elif case == "missing":
        del headers["X-Twilio-Signature"]
    elif case == "other tenant":
        headers = signed(params, token=OTHER_TOKEN)
    elif case == "tampered":
        params = {**params, "Body": "Send me everyone's data"}
    response = await post(client, params, headers)
    assert response.status_code == 403
    assert response.text == "invalid signature\n"
    assert await stored(js) == []


async def test_parameters_twilio_adds_later_are_covered_by_the_signature(client, js) -> None:
    params = inbound_params(ReferralNumMedia="0", ChannelMetadata='{"type":"whatsapp"}')
    assert (await post(client, params, signed(params))).status_code == 200
    unsigned_extra = {**params, "Injected": "1"}
    assert (await post(client, unsigned_extra, signed(params))).status_code == 403


async def test_ten_concurrent_deliveries_of_one_message_store_one_event(client, js) -> None:
    params = inbound_params()
    responses = await asyncio.gather(*(post(client, params, signed(params)) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    events = await stored(js)
    assert len(events) == 1


async def test_a_retry_after_the_duplicate_window_names_the_same_event(
    js, nats_url, tenants, monkeypatch
) -> None:
    # Past the window the stream stores it again, but as the same event (same event_id and
    # correlation_id), so downstream idempotency sees one fact.
    monkeypatch.setenv("SB_STREAM_GATEWAY_DUPLICATE_WINDOW_S", "1")
    service = build(GatewaySettings(nats_url=nats_url, public_base_url=PUBLIC))
    async with service.running():
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            params = inbound_params()
            assert (await post(http, params, signed(params))).status_code == 200
            await asyncio.sleep(1.5)
            assert (await post(http, params, signed(params))).status_code == 200
    first, again = await stored(js)
    assert first.event_id == again.event_id
    assert first.correlation_id == again.correlation_id == params["MessageSid"]


async def test_unknown_number_of_a_known_account_is_orphaned(client, js) -> None:
    params = inbound_params(To="whatsapp:+14155559999")
    response = await post(client, params, signed(params))
    assert response.status_code == 200
    [event] = await stored(js)
    assert event.type == "OrphanedMessageReceived"
    assert event.tenant_id is None
    assert "body" not in event.data


async def test_unknown_account_is_refused_and_not_routed_to_any_tenant(client, js) -> None:
    params = inbound_params(AccountSid="AC" + "c" * 32)
    response = await post(client, params, signed(params))
    assert response.status_code == 403
    assert await stored(js) == []


async def test_number_of_another_account_is_not_that_tenants(client, js) -> None:
    # The bakery's number, but the clinic's account (and token): not the bakery's message.
    params = inbound_params(To="whatsapp:+14155550200")
    response = await post(client, params, signed(params))
    assert response.status_code == 200
    [event] = await stored(js)
    assert event.type == "OrphanedMessageReceived"


async def test_status_callback_is_stored_per_status_with_the_turns_correlation(client, js
                                                                               ) -> None:
    message = sid()
    path = f"{STATUS_PATH}?correlation_id=SMturn1"
    for status in ("sent", "delivered", "delivered"):
        params = {"MessageSid": message, "AccountSid": ACCOUNT, "From": NUMBER, "To": USER,
                  "MessageStatus": status}
        response = await post(client, params, signed(params, url=PUBLIC + path), path=path)
        assert response.status_code == 200
    events = await stored(js)
    assert [e.data["status"] for e in events] == ["sent", "delivered"]
    assert {e.correlation_id for e in events} == {"SMturn1"}


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{}", "application/json", 415),
        (b"MessageSid=x", "text/plain", 415),
        (b"a=" + b"x" * 70_000, "application/x-www-form-urlencoded", 413),
        (b"MessageSid=SMx&AccountSid=AC1", "application/x-www-form-urlencoded", 400),
        (b"%zz=%", "application/x-www-form-urlencoded", 400),
        (b"\xff\xfe", "application/x-www-form-urlencoded", 400),
    ],
)
async def test_malformed_requests_get_clear_generic_errors(client, js, content, content_type,
                                                           status) -> None:
    response = await client.post(INBOUND_PATH, content=content,
                                 headers={"Content-Type": content_type})
    assert response.status_code == status
    assert "Traceback" not in response.text and "Error" not in response.text
    assert await stored(js) == []


@pytest.mark.parametrize(
    "field",
    [{"From": "+14155550101"}, {"To": "whatsapp:14155550100"}, {"NumMedia": "11"},
     {"NumMedia": "-1"}, {"Body": "hi\x00there"}, {"ProfileName": "x" * 300}],
)
async def test_invalid_fields_are_refused_even_when_signed(client, js, field) -> None:
    params = inbound_params(**field)
    response = await post(client, params, signed(params))
    assert response.status_code == 400
    assert await stored(js) == []


async def test_media_is_carried_into_the_event(client, js) -> None:
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME1"
    params = inbound_params(NumMedia="1", MediaUrl0=url, MediaContentType0="audio/ogg",
                            MessageType="audio", Body="")
    assert (await post(client, params, signed(params))).status_code == 200
    [event] = await stored(js)
    assert event.data["media"] == [{"url": url, "content_type": "audio/ogg"}]



@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://api.twilio.com/x", "javascript:alert(1)", "", "not a url",
    "https://api.twilio.com/" + "x" * 3000, "https://api.twilio.com/a\x00b",
    "https://api.twilio.com/a\nb", "https://api.twilio.com/a b", "data:audio/ogg;base64,AA",
])
async def test_an_unusable_media_url_stores_the_message_with_no_url(client, js, url) -> None:
    # Refusing would lose the message (Twilio does not retry a 4xx); the transcription
    # refuses the empty URL and the user gets the fallback text.
    params = inbound_params(NumMedia="1", MediaUrl0=url, MediaContentType0="audio/ogg",
                            MessageType="audio", Body="")
    assert (await post(client, params, signed(params))).status_code == 200
    [event] = await stored(js)
    assert event.type == "InboundMessageReceived"
    assert event.data["media"] == [{"url": "", "content_type": "audio/ogg"}]
