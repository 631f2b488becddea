from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio_sim.sdk import simulator_async_http_client, simulator_http_client
from twilio_sim.testing import RunningSimulator

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration


def test_create_answers_a_twilio_message_resource(ids, twilio: Client) -> None:
    message = twilio.messages.create(to=ids.user, from_=ids.business, body="hello")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.account_sid == ids.account
    assert (message.to, message.from_, message.body) == (ids.user, ids.business, "hello")
    assert message.direction == "outbound-api"
    assert message.messaging_service_sid == ids.service
    assert message.num_segments == "1" and message.num_media == "0"
    assert message.error_code is None
    assert isinstance(message.date_created, datetime)
    assert message.uri == f"/2010-04-01/Accounts/{ids.account}/Messages/{message.sid}.json"


def test_messaging_service_picks_the_sender(ids, twilio: Client) -> None:
    message = twilio.messages.create(to=ids.user, messaging_service_sid=ids.service, body="hi")
    assert message.from_ == ids.business


def test_bad_credentials_are_refused_with_401(ids, sim: RunningSimulator) -> None:
    intruder = Client(ids.account, "wrong-token", http_client=simulator_http_client(sim.url))
    with pytest.raises(TwilioRestException) as raised:
        intruder.messages.create(to=ids.user, from_=ids.business, body="hello")
    assert raised.value.status == 401
    assert raised.value.code == 20003


def test_validation_errors_use_twilio_codes(ids, twilio: Client) -> None:
    cases = [
        ({"to": ids.user, "from_": ids.business, "body": "x" * 1601}, 21617),
        ({"to": "whatsapp:12", "from_": ids.business, "body": "hi"}, 21211),
        ({"to": ids.user, "from_": "whatsapp:+15550009999", "body": "hi"}, 63007),
        ({"to": ids.user, "from_": ids.business}, 21602),
    ]
    for kwargs, code in cases:
        with pytest.raises(TwilioRestException) as raised:
            twilio.messages.create(**kwargs)
        assert (raised.value.status, raised.value.code) == (400, code)


async def test_scripted_failures_surface_as_rest_exceptions(
    ids, sim: RunningSimulator, twilio: Client
) -> None:
    async with sim.client() as admin:
        await admin.queue_failure("429", retry_after_s=7)
        await admin.queue_failure("21211", to=ids.user)

        with pytest.raises(TwilioRestException) as limited:
            twilio.messages.create(to=ids.user, from_=ids.business, body="one")
        assert (limited.value.status, limited.value.code) == (429, 20429)
        with pytest.raises(TwilioRestException) as invalid:
            twilio.messages.create(to=ids.user, from_=ids.business, body="two")
        assert (invalid.value.status, invalid.value.code) == (400, 21211)
        third = twilio.messages.create(to=ids.user, from_=ids.business, body="three")
        assert third.status == "queued"

        seen = await admin.messages()
    attempts = seen["attempts"]
    assert [(a["status_code"], a["scripted"]) for a in attempts] == [
        (429, "429"), (400, "21211"), (201, None)]
    assert [m["body"] for m in seen["messages"]] == ["three"]


def test_429_carries_retry_after(ids, sim: RunningSimulator) -> None:
    url = f"{sim.url}/2010-04-01/Accounts/{ids.account}/Messages.json"
    form = {"To": ids.user, "From": ids.business, "Body": "hi"}
    httpx.post(f"{sim.url}/sim/failures", json={"kind": "429", "retry_after_s": 3})
    answer = httpx.post(url, data=form, auth=(ids.account, ids.token))
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.json() == {"code": 20429, "message": "Too Many Requests",
                             "more_info": "https://www.twilio.com/docs/errors/20429",
                             "status": 429}


def test_timeout_leaves_an_ambiguous_send_that_list_reveals(
    ids, sim: RunningSimulator, twilio: Client
) -> None:
    httpx.post(f"{sim.url}/sim/failures", json={"kind": "timeout", "hang_s": 3})
    impatient = Client(ids.account, ids.token,
                       http_client=simulator_http_client(sim.url, timeout=0.5))
    since = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.messages.create(to=ids.user, from_=ids.business, body="did it go?")

    found = twilio.messages.list(to=ids.user, from_=ids.business, date_sent_after=since)
    assert [m.body for m in found] == ["did it go?"]
    assert len(httpx.get(f"{sim.url}/sim/messages").json()["attempts"]) == 1


def test_list_filters_pages_and_fetch(ids, twilio: Client) -> None:
    other = "whatsapp:+4915199999999"
    for n in range(3):
        twilio.messages.create(to=ids.user, from_=ids.business, body=f"to user {n}")
    twilio.messages.create(to=other, from_=ids.business, body="to other")

    to_user = twilio.messages.list(to=ids.user, page_size=2)
    assert [m.body for m in to_user] == ["to user 2", "to user 1", "to user 0"]
    assert [m.body for m in twilio.messages.list(to=other, from_=ids.business)] == ["to other"]
    first_page = twilio.messages.page(to=ids.user, page_size=2)
    assert first_page.next_page_url is not None
    assert [m.body for m in first_page.next_page()] == ["to user 0"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert twilio.messages.list(date_sent_after=tomorrow) == []
    assert len(twilio.messages.list(date_sent_before=tomorrow)) == 4

    fetched = twilio.messages(to_user[0].sid).fetch()
    assert fetched.body == "to user 2"
    with pytest.raises(TwilioRestException) as missing:
        twilio.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


async def test_async_sdk_client_works_too(ids, sim: RunningSimulator) -> None:
    client = Client(ids.account, ids.token, http_client=simulator_async_http_client(sim.url))
    message = await client.messages.create_async(to=ids.user, from_=ids.business, body="async")
    assert message.status == "queued"
    assert (await client.messages(message.sid).fetch_async()).body == "async"
    await client.http_client.close()  # type: ignore[attr-defined]
