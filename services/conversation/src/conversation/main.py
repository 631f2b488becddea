"""Composition root: the conversation service, wired from its settings."""

from __future__ import annotations

from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import (
    HandoffDeadlineDue,
    IdleCheckDue,
    TranscriptDeadlineDue,
    TurnDeadlineDue,
)
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed
from switchboard_contracts.topology import (
    AGENT,
    CONVERSATION,
    GATEWAY,
    INBOUND_PARTITIONS,
    INBOUND_TYPE,
    TRANSCRIPTION,
    event_subject,
)
from switchboard_runtime import Service
from switchboard_runtime.bus import ConsumerSpec, Handlers
from switchboard_tenants import TokenCipher, attach_directory

from .command_server import CommandServer
from .handlers import ConversationHandlers
from .policy import TenantPolicy, policy_of
from .settings import ConversationSettings
from .store import ConversationStore
from .view import ViewWriter, open_view_bucket

# Handlers are short (an append, a view write, a timer); a conflict storm is retried by redelivery.
# User messages: one durable consumer per partition of the gateway's inbound subject, each
# with at most one unacknowledged message, bound by every replica: one conversation's
# messages are handled one at a time, in the order the gateway stored them (ADR 0017). A
# failing message holds its partition until it succeeds or is dead-lettered, so it is
# retried soon and often.
INBOUND_PARTITIONED = tuple(
    ConsumerSpec(f"conversation-inbound-p{partition}", GATEWAY.name,
                 (event_subject("gateway", INBOUND_TYPE, key=str(partition)),),
                 ack_wait_s=30.0, max_deliver=8, max_ack_pending=1, batch=1,
                 retry_delays_s=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
    for partition in range(INBOUND_PARTITIONS)
)
# Messages a gateway of an earlier release stored on the unpartitioned subject (during a
# rolling upgrade): handled as before, without the ordering guarantee.
INBOUND_UNPARTITIONED = ConsumerSpec("conversation-inbound", GATEWAY.name,
                                     (event_subject("gateway", INBOUND_TYPE),),
                                     ack_wait_s=30.0, max_deliver=8)
REPLIES = ConsumerSpec("conversation-replies", AGENT.name, ("agent.>",), ack_wait_s=30.0,
                       max_deliver=8)
TRANSCRIPTS = ConsumerSpec("conversation-transcripts", TRANSCRIPTION.name, ("transcription.>",),
                           ack_wait_s=30.0, max_deliver=8)
TIMERS = ConsumerSpec("conversation-timers", CONVERSATION.name,
                      tuple(f"conversation.*.{due.TYPE}" for due in
                            (IdleCheckDue, TurnDeadlineDue, TranscriptDeadlineDue,
                                 HandoffDeadlineDue)),
                      ack_wait_s=30.0, max_deliver=8)


def build(settings: ConversationSettings | None = None) -> Service:
    settings = settings or ConversationSettings()
    cipher = TokenCipher.from_env()  # fail at start-up, naming the setting
    service = Service(settings, owns=(CONVERSATION,), reads=(GATEWAY, AGENT, TRANSCRIPTION))
    service.app.title = "Switchboard conversation"

    @service.on_start
    async def wire(svc: Service) -> None:
        directory = await attach_directory(svc, cipher)

        def tenant_policy(tenant_id: str) -> TenantPolicy:
            return policy_of(directory.tenant(tenant_id))

        views = ViewWriter(await open_view_bucket(svc.js, settings.conversation_view_replicas),
                           remembered=settings.conversation_cache_size)
        handlers = ConversationHandlers(
            ConversationStore(svc.nc, svc.js, settings.conversation_cache_size), views,
            tenant_policy,
            idle_close_s=settings.conversation_idle_close_s,
            turn_deadline_s=settings.conversation_turn_deadline_s,
            transcript_deadline_s=settings.conversation_transcript_deadline_s,
            context_size=settings.conversation_context_messages,
            max_conflicts=settings.conversation_max_conflicts,
        )
        for inbound in (*INBOUND_PARTITIONED, INBOUND_UNPARTITIONED):
            svc.consume(inbound, Handlers().on(InboundMessageReceived, handlers.on_inbound))
        svc.consume(REPLIES, Handlers().on(ReplyGenerated, handlers.on_reply))
        svc.consume(TRANSCRIPTS, Handlers()
                    .on(TranscriptionCompleted, handlers.on_transcript)
                    .on(TranscriptionFailed, handlers.on_transcript))
        svc.consume(TIMERS, Handlers()
                    .on(IdleCheckDue, handlers.on_idle_check)
                    .on(TurnDeadlineDue, handlers.on_turn_deadline)
                    .on(TranscriptDeadlineDue, handlers.on_transcript_deadline)
                    .on(HandoffDeadlineDue, handlers.on_handoff_deadline))
        # Operators' commands (ADR 0022), answered by one replica of the queue group each.
        await CommandServer(handlers).subscribe(svc.nc)

    return service


def main() -> None:
    build().run()
