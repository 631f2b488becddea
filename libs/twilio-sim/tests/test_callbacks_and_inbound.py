from __future__ import annotations

import base64
import time

import httpx
import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio_sim import Account, Number, SimConfig, Template
from twilio_sim.sdk import simulator_http_client
from twilio_sim.testing import RunningSimulator, run_simulator

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration

INBOUND_FIELDS = {
    "MessageSid", "SmsMessageSid", "SmsSid", "AccountSid", "MessagingServiceSid", "From", "To",
    "Body", "NumMedia", "NumSegments", "WaId", "ProfileName", "MessageType", "SmsStatus",
    "ApiVersion", "ReferralNumMedia",
}


def test_status_callbacks_arrive_in_order_and_signed(ids, receiver, twilio: Client) -> None:
    callback_url = f"{receiver.url}/status?tenant=a"
    message = twilio.messages.create(to=ids.user, from_=ids.business, body="hi",
                                     status_callback=callback_url)

    callbacks = receiver.wait_for("/status", 3)
    assert [c.params["MessageStatus"] for c in callbacks] == ["sent", "delivered", "read"]
    validator = RequestValidator(ids.token)
    for callback in callbacks:
        assert callback.url == callback_url
        assert validator.validate(callback.url, callback.params,
                                  callback.headers["x-twilio-signature"])
        assert callback.params["MessageSid"] == message.sid
        assert callback.params["AccountSid"] == ids.account
        assert (callback.params["From"], callback.params["To"]) == (ids.business, ids.user)
        assert "ErrorCode" not in callback.params
        assert callback.headers["i-twilio-idempotency-token"]
    fetched = twilio.messages(message.sid).fetch()
    assert fetched.status == "read" and fetched.date_sent is not None


async def test_outside_window_fails_later_with_63016(
    ids, receiver, sim: RunningSimulator, twilio: Client
) -> None:
    async with sim.client() as admin:
        await admin.queue_failure("63016")
    message = twilio.messages.create(to=ids.user, from_=ids.business, body="late",
                                     status_callback=f"{receiver.url}/status")
    assert message.status == "queued"  # accepted: the failure comes asynchronously

    [callback] = receiver.wait_for("/status", 1)
    assert callback.params["MessageStatus"] == "failed"
    assert callback.params["ErrorCode"] == "63016"
    fetched = twilio.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("failed", 63016)


def test_enforced_window_opens_with_an_inbound_message(ids, receiver) -> None:
    config = SimConfig(
        accounts=[Account(sid=ids.account, auth_token=ids.token)],
        numbers=[Number(address=ids.business, account_sid=ids.account,
                        webhook_url=f"{receiver.url}/webhook")],
        templates=[Template(sid="HX" + "a" * 32, account_sid=ids.account, body="Hello")],
        enforce_window=True,
    )
    with run_simulator(config) as sim:
        twilio = Client(ids.account, ids.token, http_client=simulator_http_client(sim.url))
        closed = twilio.messages.create(to=ids.user, from_=ids.business, body="hello?")
        template = twilio.messages.create(to=ids.user, from_=ids.business,
                                          content_sid="HX" + "a" * 32)
        httpx.post(f"{sim.url}/sim/inbound",
                   json={"from": ids.user, "to": ids.business, "body": "hi"})
        opened = twilio.messages.create(to=ids.user, from_=ids.business, body="welcome")
        receiver.wait_for("/webhook", 1)
        deadline = time.monotonic() + 5
        while twilio.messages(closed.sid).fetch().status != "failed":
            assert time.monotonic() < deadline, "the closed-window send never failed"
            time.sleep(0.05)
        sent = {m.sid: m for m in twilio.messages.list(to=ids.user)}
    assert sent[closed.sid].error_code == 63016
    assert sent[template.sid].error_code is None
    assert sent[opened.sid].error_code is None


async def test_inbound_webhook_is_signed_for_the_configured_url(
    ids, receiver, sim: RunningSimulator
) -> None:
    async with sim.client() as admin:
        answer = await admin.inbound(ids.user, ids.business, "Hallo!", profile_name="Ana",
                                     extra={"ButtonPayload": "yes"})
        assert answer["status_code"] == 200 and answer["attempts"] == 1
        again = await admin.redeliver(answer["message_sid"])
    assert again["status_code"] == 200

    first, second = receiver.wait_for("/webhook", 2)
    assert first.url == f"{receiver.url}/webhook"
    assert RequestValidator(ids.token).validate(first.url, first.params,
                                                first.headers["x-twilio-signature"])
    assert set(first.params) == INBOUND_FIELDS | {"ButtonPayload"}
    params = first.params
    assert params["MessageSid"] == answer["message_sid"] and params["MessageSid"][:2] == "SM"
    assert (params["AccountSid"], params["MessagingServiceSid"]) == (ids.account, ids.service)
    assert (params["From"], params["To"], params["Body"]) == (ids.user, ids.business, "Hallo!")
    assert (params["NumMedia"], params["MessageType"], params["WaId"]) == (
        "0", "text", "4915112345678")
    assert params["ProfileName"] == "Ana"
    # A redelivery is the identical request: same fields, signature and idempotency token.
    assert second.params == first.params
    assert second.headers["x-twilio-signature"] == first.headers["x-twilio-signature"]
    assert (second.headers["i-twilio-idempotency-token"]
            == first.headers["i-twilio-idempotency-token"])


async def test_webhook_5xx_is_retried_only_when_the_url_fragment_asks(ids, receiver) -> None:
    receiver.status = 503
    config = SimConfig(
        accounts=[Account(sid=ids.account, auth_token=ids.token)],
        numbers=[
            Number(address=ids.business, account_sid=ids.account,
                   webhook_url=f"{receiver.url}/plain"),
            Number(address="whatsapp:+14155230000", account_sid=ids.account,
                   webhook_url=f"{receiver.url}/retried#rc=2&rp=5xx"),
        ],
        webhook_retry_delay_s=0.01,
    )
    with run_simulator(config) as sim:
        async with sim.client() as admin:
            plain = await admin.inbound(ids.user, ids.business, "a")
            retried = await admin.inbound(ids.user, "whatsapp:+14155230000", "b")
    assert (plain["status_code"], plain["attempts"]) == (503, 1)
    assert (retried["status_code"], retried["attempts"]) == (503, 3)
    retries = receiver.at("/retried")
    assert {r.url for r in retries} == {f"{receiver.url}/retried"}  # the fragment is not sent
    assert RequestValidator(ids.token).validate(retries[0].url, retries[0].params,
                                                retries[0].headers["x-twilio-signature"])


async def test_voice_note_media_needs_auth_and_redirects_to_the_cdn(
    ids, receiver, sim: RunningSimulator
) -> None:
    voice = b"OggS fake opus bytes"
    async with sim.client() as admin:
        answer = await admin.inbound(ids.user, ids.business, media=[("audio/ogg", voice)])
    [webhook] = receiver.wait_for("/webhook", 1)
    params = webhook.params
    assert answer["message_sid"].startswith("MM")
    assert (params["NumMedia"], params["MessageType"], params["MediaContentType0"]) == (
        "1", "audio", "audio/ogg")
    media_url = params["MediaUrl0"]
    assert media_url.startswith(
        f"{sim.url}/2010-04-01/Accounts/{ids.account}/Messages/{answer['message_sid']}/Media/ME")

    async with httpx.AsyncClient() as http:
        refused = await http.get(media_url)
        assert refused.status_code == 401 and refused.json()["code"] == 20003
        redirect = await http.get(media_url, auth=(ids.account, ids.token))
        assert redirect.status_code == 302
        cdn_url = redirect.headers["location"]
        assert cdn_url.startswith(f"{sim.url}/cdn/")
        served = await http.get(cdn_url)  # no credentials
    assert served.status_code == 200
    assert served.content == voice
    assert served.headers["content-type"] == "audio/ogg"


async def test_fresh_media_can_answer_404_first(ids, sim: RunningSimulator) -> None:
    async with httpx.AsyncClient() as http:
        uploaded = (await http.post(f"{sim.url}/sim/media", json={
            "content_type": "audio/ogg", "data_b64": base64.b64encode(b"OggS").decode(),
            "not_found_times": 1,
        })).json()
        auth = (ids.account, ids.token)
        assert (await http.get(uploaded["url"], auth=auth)).status_code == 404
        retry = await http.get(uploaded["url"], auth=auth, follow_redirects=True)
    assert retry.status_code == 200 and retry.content == b"OggS"


async def test_inbox_long_poll_sees_replies_and_ticks(
    ids, sim: RunningSimulator, twilio: Client
) -> None:
    async with sim.client() as admin:
        start = await admin.inbox(ids.user)
        message = twilio.messages.create(to=ids.user, from_=ids.business, body="reply")
        statuses: list[str] = []
        cursor = start["cursor"]
        while "read" not in statuses:
            answer = await admin.inbox(ids.user, after=cursor, wait_s=5)
            assert answer["messages"], "the long poll ended without a change"
            cursor = answer["cursor"]
            statuses += [m["status"] for m in answer["messages"] if m["sid"] == message.sid]
        quiet = await admin.inbox(ids.user, after=cursor, wait_s=0.2)
    assert statuses[0] in ("queued", "sent")
    assert statuses[-1] == "read"
    assert quiet == {"messages": [], "cursor": cursor}


async def test_numbers_can_be_registered_at_runtime(ids, receiver) -> None:
    with run_simulator() as sim:
        async with sim.client() as admin:
            await admin.add_account(ids.account, ids.token)
            await admin.add_number(ids.business, ids.account, f"{receiver.url}/late",
                                   messaging_service_sid=ids.service)
            answer = await admin.inbound(ids.user, ids.business, "hi")
    assert answer["status_code"] == 200
    [webhook] = receiver.at("/late")
    assert RequestValidator(ids.token).validate(webhook.url, webhook.params,
                                                webhook.headers["x-twilio-signature"])


async def test_credentials_sent_to_another_cdn_host_are_refused(
    ids, receiver, make_sim_config
) -> None:
    config = make_sim_config(f"{receiver.url}/webhook")
    with run_simulator(config, cdn_host="localhost") as sim:
        async with sim.client() as admin:
            uploaded = await admin.upload_media("audio/ogg", b"OggS")
        async with httpx.AsyncClient() as http:
            redirect = await http.get(uploaded["url"], auth=(ids.account, ids.token))
            cdn_url = redirect.headers["location"]
            leaked = await http.get(cdn_url, auth=(ids.account, ids.token))
            # httpx drops credentials on a redirect to another host by itself.
            followed = await http.get(uploaded["url"], auth=(ids.account, ids.token),
                                      follow_redirects=True)
    assert cdn_url.startswith("http://localhost:")
    assert leaked.status_code == 400
    assert followed.status_code == 200 and followed.content == b"OggS"


async def test_callbacks_can_be_scripted_out_of_order(
    ids, receiver, sim: RunningSimulator, twilio: Client
) -> None:
    async with sim.client() as admin:
        await admin.queue_failure("reordered_callbacks")
    message = twilio.messages.create(to=ids.user, from_=ids.business, body="hi",
                                     status_callback=f"{receiver.url}/status")
    callbacks = receiver.wait_for("/status", 3)
    assert [c.params["MessageStatus"] for c in callbacks] == ["delivered", "read", "sent"]
    assert twilio.messages(message.sid).fetch().status == "read"
