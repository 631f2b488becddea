"""Composition root: the agent service, wired from its settings."""

from __future__ import annotations

from switchboard_contracts.events.conversation import ReplyRequested
from switchboard_contracts.topology import AGENT, CONVERSATION, event_subject
from switchboard_runtime import Service
from switchboard_runtime.bus import ConsumerSpec, Handlers
from switchboard_runtime.telemetry import get_logger
from switchboard_runtime.views import ConversationViews
from switchboard_tenants import TokenCipher, attach_directory

from .credentials import global_endpoint
from .handlers import Ports, ReplyHandler
from .llm import chat_model
from .settings import AgentSettings

log = get_logger(__name__)

# LLM calls are slow: one message per fetch, progress acks while the handler runs (so
# JetStream does not redeliver mid-call), several requests in flight per replica.
REPLIES = ConsumerSpec(
    durable="agent-replies",
    stream=CONVERSATION.name,
    filter_subjects=(event_subject("conversation", ReplyRequested.TYPE, key="*"),),
    ack_wait_s=30.0,
    max_deliver=5,
    max_ack_pending=64,
    retry_delays_s=(2.0, 10.0, 30.0, 120.0),
    batch=1,
    concurrency=8,
    long_running=True,
)


def build(settings: AgentSettings | None = None) -> Service:
    settings = settings or AgentSettings()
    cipher = TokenCipher.from_env()  # fail at start-up, naming the setting
    chat = chat_model()
    handler = ReplyHandler(settings, chat)
    service = Service(settings, owns=(AGENT,), reads=(CONVERSATION,))
    service.app.title = "Switchboard agent"
    service.consume(REPLIES, Handlers().on(ReplyRequested, handler.handle))

    @service.on_start
    async def wire(svc: Service) -> None:
        if settings.dev_responder:
            log.warning("no OPENAI_API_KEY or OPENAI_BASE_URL: the local development "
                        "responder answers")
        directory = await attach_directory(svc, cipher)
        await chat.warm_up(global_endpoint(settings))
        handler.connect(Ports(
            view_of=ConversationViews(svc.js).view_of,
            tenant=directory.tenant,
            llm_api_key=directory.llm_api_key,
            publisher=svc.publisher(AGENT),
        ))

        @svc.on_stop
        async def close(_: Service) -> None:
            await chat.aclose()

    return service


def main() -> None:
    build().run()
