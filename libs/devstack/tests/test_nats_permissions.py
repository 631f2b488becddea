"""Per-service NATS users (deploy/nats/permissions.conf): each service publishes only its own
events and the JetStream API subjects it uses, and reads only what it consumes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import agent.main
import httpx
import nats
import pytest
from gateway.main import build as build_gateway
from gateway.settings import GatewaySettings
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig
from switchboard_contracts import Envelope
from switchboard_contracts.commands import COMMAND_QUEUE, COMMAND_SUBJECT_PREFIX, command_subject
from switchboard_contracts.conversation_view import VIEW_BUCKET
from switchboard_contracts.events.conversation import ReplyRequested
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.topology import (
    ADVISORIES,
    AGENT,
    CONVERSATION,
    DEADLETTER,
    GATEWAY,
    event_subject,
)
from switchboard_devstack.embedded import PERMISSIONS_FILE, NatsAuth, NatsServer
from switchboard_runtime.bus import Publisher, dead_letter, ensure_streams
from switchboard_runtime.bus.deadletters import REPLAY
from switchboard_tenants import generate_key

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration

GENERATOR = PERMISSIONS_FILE.parent / "generate_permissions.py"
BIN = Path(sys.executable).parent


@pytest.fixture
def secured() -> Iterator[NatsServer]:
    server = NatsServer(auth=NatsAuth.generate()).start()  # no anonymous user
    try:
        yield server
    finally:
        server.cleanup()


class Client:
    """One service's connection, with the permission errors the server sent it."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.errors: list[str] = []
        self.nc = NATS()
        self.js = self.nc.jetstream(timeout=2.0)  # a refused request gets no answer

    async def connect(self, server: NatsServer) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        assert server.auth is not None
        await self.nc.connect(server.url, user=self.user, password=server.auth.passwords[self.user],
                              inbox_prefix=f"_INBOX_{self.user}", error_cb=on_error,
                              allow_reconnect=False)
        return self

    async def refused(self, what: str, timeout_s: float = 5.0) -> None:
        """Until the server has refused ``what`` (a publish or subscription subject)."""
        deadline = time.monotonic() + timeout_s
        while not any(what.lower() in error.lower() for error in self.errors):
            assert time.monotonic() < deadline, f"{what} not refused; errors: {self.errors}"
            await asyncio.sleep(0.02)
        assert any("permissions violation" in error for error in self.errors)


@pytest.fixture
async def connect(secured: NatsServer) -> AsyncIterator:  # type: ignore[type-arg]
    clients: list[Client] = []

    async def as_user(user: str) -> Client:
        client = await Client(user).connect(secured)
        clients.append(client)
        return client

    yield as_user
    for client in clients:
        await client.nc.close()


def inbound() -> Envelope:
    sid = "SM" + uuid.uuid4().hex
    return Envelope.wrap(InboundMessageReceived(
        message_sid=sid, account_sid="AC" + "0" * 32, from_address="whatsapp:+14155550101",
        to_address="whatsapp:+14155550199", body="hello",
    ), correlation_id=sid, tenant_id="tenant-a")


def violations(server: NatsServer) -> list[str]:
    return [line for line in (server.store / "nats.log").read_text().splitlines()
            if "Violation" in line]


def test_the_permissions_file_is_generated_from_the_services_consumers() -> None:
    checked = subprocess.run([sys.executable, str(GENERATOR), "--check"],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr


async def test_a_client_without_credentials_is_refused(secured: NatsServer) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(secured.url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_only_the_gateway_stores_gateway_events(connect) -> None:  # type: ignore[no-untyped-def]
    gateway = await connect("gateway")
    await ensure_streams(gateway.js, (GATEWAY, DEADLETTER, REPLAY, ADVISORIES))
    ack = await Publisher(gateway.js, GATEWAY.name).publish(
        event_subject("gateway", InboundMessageReceived.TYPE, key="3"), inbound())
    assert ack.seq == 1

    agent_user = await connect("agent")
    subject = event_subject("gateway", InboundMessageReceived.TYPE)
    with pytest.raises(asyncio.TimeoutError):  # no PubAck: the server dropped it
        await agent_user.js.publish(subject, inbound().to_bytes(), timeout=1.0)
    await agent_user.refused(f'publish to "{subject}"')
    assert (await gateway.js.stream_info(GATEWAY.name)).state.messages == 1
    assert agent_user.nc.is_connected  # a refusal does not cost the connection


async def test_the_conversation_cannot_write_another_services_stream(connect) -> None:  # type: ignore[no-untyped-def]
    agent_user = await connect("agent")
    await ensure_streams(agent_user.js, (AGENT,))
    conversation = await connect("conversation")
    await ensure_streams(conversation.js, (CONVERSATION,))

    with pytest.raises(asyncio.TimeoutError):
        await conversation.js.publish("agent.r1.ReplyGenerated", b"{}", timeout=1.0)
    await conversation.refused('publish to "agent.r1.ReplyGenerated"')
    config = (await agent_user.js.stream_info(AGENT.name)).config
    config.max_msgs = 1  # nor change its definition
    with pytest.raises(asyncio.TimeoutError):
        await conversation.js.update_stream(config)
    await conversation.refused(f'publish to "$JS.API.STREAM.UPDATE.{AGENT.name}"')
    assert (await agent_user.js.stream_info(AGENT.name)).state.messages == 0


async def test_a_reader_consumes_its_input_and_nothing_else(connect) -> None:  # type: ignore[no-untyped-def]
    conversation = await connect("conversation")
    await ensure_streams(conversation.js, (CONVERSATION,))
    request = Envelope.wrap(ReplyRequested(
        turn=1, message_sids=["SM1"], context=[], user_address="whatsapp:+447700900123",
        business_address="whatsapp:+14155550100", account_sid="AC" + "1" * 32,
    ), correlation_id="c1",
                            tenant_id="tenant-a", conversation_id="cv1")
    await Publisher(conversation.js, CONVERSATION.name).publish(
        event_subject("conversation", ReplyRequested.TYPE, key="cv1"), request)

    reader = await connect("agent")
    spec = agent.main.REPLIES
    await reader.js.add_consumer(spec.stream, spec.config())
    sub = await reader.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
    [msg] = await sub.fetch(1, timeout=5.0)
    assert Envelope.from_bytes(msg.data).event_id == request.event_id
    await msg.ack_sync()
    info = await reader.js.consumer_info(spec.stream, spec.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0

    # Not a consumer of its own making on a stream it does not read, nor another's replies.
    with pytest.raises(asyncio.TimeoutError):
        await reader.js.add_consumer(GATEWAY.name, durable_name="agent-peek", timeout=1.0)
    await reader.refused('CREATE.GATEWAY.agent-peek"')
    await reader.nc.subscribe("_INBOX_conversation.>")
    await reader.refused('subscription to "_INBOX_conversation.>"')

    # An original is fetched by sequence (to file a dead letter) only from a stream it reads.
    assert (await reader.js.get_msg(CONVERSATION.name, 1)).seq == 1
    gateway = await connect("gateway")
    await ensure_streams(gateway.js, (GATEWAY,))
    with pytest.raises(asyncio.TimeoutError):
        await reader.js.get_msg(GATEWAY.name, 1)
    await reader.refused(f'publish to "$JS.API.STREAM.MSG.GET.{GATEWAY.name}"')


async def test_the_view_is_written_by_the_conversation_and_read_by_the_agent(connect) -> None:  # type: ignore[no-untyped-def]
    conversation = await connect("conversation")
    views = await conversation.js.create_key_value(KeyValueConfig(bucket=VIEW_BUCKET))
    await views.put("cv1", b'{"turn": 1}')

    reader = await connect("agent")
    bucket = await reader.js.key_value(VIEW_BUCKET)
    assert (await bucket.get("cv1")).value == b'{"turn": 1}'
    with pytest.raises(asyncio.TimeoutError):
        await bucket.put("cv1", b"{}")
    await reader.refused(f'publish to "$KV.{VIEW_BUCKET}.cv1"')


async def test_a_service_files_dead_letters_of_its_own_consumers_only(connect) -> None:  # type: ignore[no-untyped-def]
    sender = await connect("sender")
    await ensure_streams(sender.js, (DEADLETTER,))
    await dead_letter(sender.js, stream=GATEWAY.name, consumer="sender-statuses",
                      subject="gateway.DeliveryStatusReported", stream_seq=7, deliveries=10,
                      payload=b"{}", headers=None, reason="handler failed")
    with pytest.raises(asyncio.TimeoutError):
        await dead_letter(sender.js, stream=GATEWAY.name, consumer="conversation-inbound",
                          subject="gateway.InboundMessageReceived", stream_seq=8, deliveries=8,
                          payload=b"{}", headers=None, reason="handler failed")
    await sender.refused('publish to "deadletter.GATEWAY.conversation-inbound"')
    assert (await sender.js.stream_info(DEADLETTER.name)).state.messages == 1


async def test_the_gateway_runs_under_its_own_user(secured: NatsServer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Start-up (streams, tenant directory, shared limits, buckets) and a stored webhook,
    with nothing refused."""
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    assert secured.auth is not None
    settings = GatewaySettings(nats_url=secured.url, allow_unsigned_webhooks=True,
                               nats_user="gateway",
                               nats_password=secured.auth.passwords["gateway"])
    async with build_gateway(settings).running() as service:
        transport = httpx.ASGITransport(app=service.app, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            answer = await http.post("/twilio/whatsapp/inbound", data={
                "MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32,
                "From": "whatsapp:+447700900123", "To": "whatsapp:+14155550100",
                "Body": "hello", "NumMedia": "0",
            })
        assert answer.status_code == 200, answer.text  # no tenant: stored as orphaned
        stored = await service.js.stream_info(GATEWAY.name)
        assert stored.state.messages == 1
        deadline = time.monotonic() + 10  # the shared limits' background sync counted it
        while (await service.js.stream_info("LIMITS_GATEWAY")).state.messages == 0:
            assert time.monotonic() < deadline, "the rate-limit counters were never synced"
            await asyncio.sleep(0.05)
    assert violations(secured) == []


async def test_an_operators_cli_connects_as_the_user_of_its_environment(connect, secured) -> None:  # type: ignore[no-untyped-def]
    """The operator's tools read NATS_USER / NATS_PASSWORD as the services do."""
    assert secured.auth is not None
    sender = await connect("sender")
    await ensure_streams(sender.js, (DEADLETTER,))
    env = {**os.environ, "NATS_URL": secured.url, **secured.auth.client_env("operator")}
    listed = await asyncio.to_thread(subprocess.run, [BIN / "switchboard-deadletters", "list"],
                                     env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "0 dead letter(s)" in listed.stdout


async def test_operator_commands_go_from_the_projection_to_the_conversation_only(connect) -> None:  # type: ignore[no-untyped-def]
    """ADR 0022: the projection's operator API asks, the conversation answers; no other service
    may send a command, nor listen to them."""
    subject = command_subject("tenant-a")
    conversation = await connect("conversation")

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(b'{"accepted": true}')

    await conversation.nc.subscribe(f"{COMMAND_SUBJECT_PREFIX}.*", queue=COMMAND_QUEUE,
                                    cb=answer)
    await conversation.nc.flush()
    projection = await connect("projection")
    reply = await projection.nc.request(subject, b"{}", timeout=5.0)
    assert reply.data == b'{"accepted": true}'

    agent_user = await connect("agent")
    await agent_user.nc.publish(subject, b"{}")
    await agent_user.refused(f'publish to "{subject}"')
    await agent_user.nc.subscribe(f"{COMMAND_SUBJECT_PREFIX}.>")
    await agent_user.refused(f'subscription to "{COMMAND_SUBJECT_PREFIX}.>"')


async def test_the_sender_runs_under_its_own_user(  # type: ignore[no-untyped-def]
        secured: NatsServer, monkeypatch, connect) -> None:
    """Start-up (its stream, the streams it reads, every consumer, buckets, shared limits, the
    watcher of the views), with nothing refused: a consumer missing from the generator fails
    here."""
    from sender.main import build as build_sender
    from sender.settings import SenderSettings

    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    conversation = await connect("conversation")  # the views' bucket exists: it is watched
    await conversation.js.create_key_value(KeyValueConfig(bucket=VIEW_BUCKET))
    assert secured.auth is not None
    settings = SenderSettings(nats_url=secured.url, nats_user="sender",
                              nats_password=secured.auth.passwords["sender"])
    async with build_sender(settings).running() as service:
        for stream, durable in ((CONVERSATION.name, "sender-requests"),
                                (AGENT.name, "sender-replies")):
            assert (await service.js.consumer_info(stream, durable)).name == durable
    assert violations(secured) == []
