"""Templates (the Content API, ContentSid on the Messages API) and the 24-hour window."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio_sim import Account, Number, SimConfig, Template
from twilio_sim.chat.cli import _show, out
from twilio_sim.chat.session import Update
from twilio_sim.config import StatusDelays
from twilio_sim.sdk import simulator_http_client
from twilio_sim.testing import RunningSimulator, run_simulator

OTHER_ACCOUNT = "AC" + "9" * 32
OTHER_TOKEN = "token-of-the-other-account"
OTHERS_TEMPLATE = "HX" + "9" * 32
DAY_S = 24 * 3600


@pytest.fixture
def window_sim(ids, receiver) -> Iterator[RunningSimulator]:
    """The window enforced; a second account with a template of its own."""
    config = SimConfig(
        accounts=[Account(sid=ids.account, auth_token=ids.token),
                  Account(sid=OTHER_ACCOUNT, auth_token=OTHER_TOKEN)],
        numbers=[Number(address=ids.business, account_sid=ids.account,
                        webhook_url=f"{receiver.url}/webhook")],
        templates=[Template(sid=OTHERS_TEMPLATE, account_sid=OTHER_ACCOUNT, body="Not yours")],
        status_delays=StatusDelays(sent=0.02, delivered=0.02, read=0.02),
        enforce_window=True,
    )
    with run_simulator(config) as sim:
        yield sim


@pytest.fixture
def client(ids, window_sim: RunningSimulator) -> Client:
    return Client(ids.account, ids.token, http_client=simulator_http_client(window_sim.url))


def final(twilio: Client, sid: str, timeout_s: float = 5.0) -> tuple[str, int | None]:
    """``("failed", code)`` or ``("delivered", None)`` once the message got that far (statuses
    come asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = twilio.messages(sid).fetch()
        if message.status == "failed":
            return message.status, message.error_code
        if message.status in ("delivered", "read") or time.monotonic() > deadline:
            return "delivered" if message.status == "read" else message.status, None
        time.sleep(0.02)


def test_a_template_made_with_the_content_api_is_sent_rendered(
        ids, client: Client, window_sim: RunningSimulator) -> None:
    content = client.content.v1.contents.create(
        client.content.v1.contents.ContentCreateRequest({
            "friendly_name": "appointment_reminder", "language": "en",
            "variables": {"1": "there", "2": "soon"},
            "types": {"twilio/text": {"body": "Hi {{1}}, your appointment is {{2}}."}},
        }))
    assert content.sid.startswith("HX") and len(content.sid) == 34
    assert client.content.v1.contents(content.sid).fetch().friendly_name == "appointment_reminder"

    # Outside the window (the user never wrote): a template is what may go.
    message = client.messages.create(
        to=ids.user, from_=ids.business, content_sid=content.sid,
        content_variables=json.dumps({"1": "Ana"}))
    assert message.body == "Hi Ana, your appointment is soon."  # {{2}}: the default
    assert final(client, message.sid) == ("delivered", None)

    seen = {m["sid"]: m for m in httpx.get(f"{window_sim.url}/sim/messages").json()["messages"]}
    assert seen[message.sid]["content_sid"] == content.sid
    assert seen[message.sid]["content_variables"] == {"1": "Ana"}
    assert seen[message.sid]["template"] == "appointment_reminder"


def test_a_content_sid_must_be_one_of_the_accounts_templates(ids, client: Client) -> None:
    cases = [
        ({"content_sid": OTHERS_TEMPLATE}, 21655),  # another account's
        ({"content_sid": "HX" + "0" * 32}, 21655),  # no such template
        ({"content_sid": "HX123"}, 21655),  # malformed
        ({"body": "hi", "content_variables": '{"1": "x"}'}, 21654),  # variables, no template
    ]
    for kwargs, code in cases:
        with pytest.raises(TwilioRestException) as raised:
            client.messages.create(to=ids.user, from_=ids.business, **kwargs)
        assert (raised.value.status, raised.value.code) == (400, code), kwargs


async def test_bad_content_variables_are_refused_with_21656(
        ids, client: Client, window_sim: RunningSimulator) -> None:
    async with window_sim.client() as admin:
        sid = await admin.create_template(ids.account, ids.token, "hello", "Hello {{1}}")
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=ids.user, from_=ids.business, content_sid=sid,
                               content_variables="not json")
    assert (raised.value.status, raised.value.code) == (400, 21656)


async def test_free_text_fails_with_63016_once_the_last_inbound_is_over_a_day_old(
        ids, client: Client, window_sim: RunningSimulator) -> None:
    async with window_sim.client() as admin:
        await admin.inbound(ids.user, ids.business, "hi")
        inside = client.messages.create(to=ids.user, from_=ids.business, body="welcome")
        assert not await admin.set_last_inbound(ids.user, ids.business, DAY_S + 60)
        outside = client.messages.create(to=ids.user, from_=ids.business, body="still there?")
        template = await admin.create_template(ids.account, ids.token, "nudge", "Still there?")
        allowed = client.messages.create(to=ids.user, from_=ids.business, content_sid=template)
        assert await admin.set_last_inbound(ids.user, ids.business, DAY_S - 60)
        reopened = client.messages.create(to=ids.user, from_=ids.business, body="again")

    # Created (201, queued) like any message; the failure comes with its status, as Twilio's.
    assert outside.status == "queued"
    assert final(client, outside.sid) == ("failed", 63016)
    assert final(client, inside.sid) == ("delivered", None)
    assert final(client, allowed.sid) == ("delivered", None)
    assert final(client, reopened.sid) == ("delivered", None)


def test_the_chat_shows_which_template_a_message_is(ids) -> None:
    message = {"sid": "SM" + "1" * 32, "from": ids.business, "to": ids.user,
               "body": "Hi Ana", "media_urls": [], "status": "queued", "error_code": None,
               "content_sid": "HX" + "1" * 32, "template": "greeting"}
    with out.capture() as shown:
        _show(Update(message, is_new=True))
    assert "template greeting" in shown.get() and "Hi Ana" in shown.get()
    with out.capture() as plain:
        _show(Update({**message, "content_sid": None, "template": None}, is_new=True))
    assert "template" not in plain.get()
