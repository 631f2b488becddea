"""The whole conversation loop in one event loop: gateway (on a real port), conversation,
agent and sender services, the Twilio simulator and the LLM simulator, on a test's NATS."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.main import build as build_agent
from agent.settings import AgentSettings
from conversation.main import build as build_conversation
from conversation.settings import ConversationSettings
from gateway.main import build as build_gateway
from gateway.settings import GatewaySettings
from llm_sim.testing import RunningLLMSim
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sender.main import build as build_sender
from sender.settings import SenderSettings
from switchboard_contracts import Envelope
from switchboard_devstack.serving import serve_here
from switchboard_devstack.waiting import drained as drained
from switchboard_devstack.waiting import eventually as eventually
from switchboard_runtime import Service
from switchboard_tenants import DirectoryPublisher, TenantRecord, TokenCipher
from switchboard_tenants.kv import open_bucket
from twilio_sim import Account, SimConfig
from twilio_sim.config import StatusDelays

ACCOUNT = "AC" + "e" * 32
TOKEN = "e2e0" * 8
NUMBER = "whatsapp:+14155550100"
USER = "whatsapp:+447700900001"


def simulator_config() -> SimConfig:
    # As Twilio does, free text more than 24 h after the user's last message fails (63016).
    return SimConfig(accounts=[Account(sid=ACCOUNT, auth_token=TOKEN)],
                     status_delays=StatusDelays(sent=0.05, delivered=0.05, read=0.05),
                     enforce_window=True)


async def publish_tenant(js: JetStreamContext, cipher: TokenCipher, language: str = "en"
                         ) -> None:
    now = datetime.now(UTC)
    await DirectoryPublisher(await open_bucket(js)).publish(TenantRecord(
        tenant_id="clinic", name="clinic", account_sid=ACCOUNT,
        auth_token_encrypted=cipher.encrypt(TOKEN), system_prompt="You answer for a clinic.",
        model="clinic-model", language=language, numbers=(NUMBER,), created_at=now,
        updated_at=now,
    ))


@dataclass
class Stack:
    nats_url: str
    sim_url: str
    llm: RunningLLMSim
    gateway_url: str = ""
    sender: Service | None = None

    def sender_settings(self) -> SenderSettings:
        return SenderSettings(nats_url=self.nats_url, http_port=0,
                              gateway_public_url=self.gateway_url,
                              twilio_api_base_url=self.sim_url, part_timeout_s=3.0,
                              retry_base_s=0.1, retry_max_s=0.5)


@contextlib.asynccontextmanager
async def running_stack(nats_url: str, sim_url: str, llm: RunningLLMSim, *,
                        transcription: bool = False) -> AsyncIterator[Stack]:
    """The loop's services; with ``transcription``, the transcription service too (the real
    Whisper model, voice notes fetched from the simulator, its one allowed media host)."""
    stack = Stack(nats_url, sim_url, llm)
    gateway = build_gateway(GatewaySettings(nats_url=nats_url, public_base_url="http://x"))
    async with gateway.running(), serve_here(gateway.app) as url:
        stack.gateway_url = url
        # Twilio signs the URL it calls: the gateway's public URL is its real one here.
        gateway_settings = gateway.settings
        assert isinstance(gateway_settings, GatewaySettings)
        gateway_settings.public_base_url = url
        services = [
            build_conversation(ConversationSettings(nats_url=nats_url)),
            build_agent(AgentSettings(nats_url=nats_url, openai_base_url=llm.base_url,
                                      openai_api_key="sk-test-not-a-real-key",
                                      llm_timeout_s=5.0, llm_max_attempts=3,
                                      llm_backoff_base_s=0.1, llm_backoff_max_s=0.3)),
        ]
        if transcription:  # imported here: the model's libraries are heavy to load
            from transcription.main import build as build_transcription
            from transcription.settings import TranscriptionSettings

            services.append(build_transcription(TranscriptionSettings(
                nats_url=nats_url, http_port=0,
                media_allowed_hosts=sim_url.split("://", 1)[1].rstrip("/"),
                media_retry_delays_s=(0.2, 0.5))))
        async with contextlib.AsyncExitStack() as started:
            for service in services:
                await started.enter_async_context(service.running())
            stack.sender = build_sender(stack.sender_settings())
            await started.enter_async_context(stack.sender.running())
            yield stack


async def stream_events(js: JetStreamContext, stream: str) -> list[Envelope]:
    """The stream's events in order; anything that is not one (a bad payload, a failed
    read) fails the test instead of being skipped."""
    info = await js.stream_info(stream)
    events: list[Envelope] = []
    if not info.state.messages:  # an empty stream's first sequence is 0, which is no message
        return events
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:  # a gap: a one-shot schedule removed once it fired
            continue
        if msg.headers and "Nats-Schedule" in msg.headers:  # a timer, not an event
            continue
        events.append(Envelope.from_bytes(msg.data or b""))
    return events
