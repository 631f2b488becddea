"""Composition root: the sender service, wired from its settings."""

from __future__ import annotations

from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import OutboundMessageRequested
from switchboard_contracts.events.gateway import DeliveryStatusReported
from switchboard_contracts.events.sender import PartTimeoutDue
from switchboard_contracts.topology import AGENT, CONVERSATION, GATEWAY, SENDER
from switchboard_runtime import Service
from switchboard_runtime.bus import ConsumerSpec, Handlers
from switchboard_runtime.limits import attach_limits
from switchboard_runtime.views import ConversationViews
from switchboard_tenants import TokenCipher, attach_directory

from .handlers import Sender
from .leases import Leases, open_leases_bucket
from .ratelimit import SenderPacer
from .settings import SenderSettings
from .store import ReplyStore, open_messages_bucket
from .tenant_webhooks import attach_tenant_webhooks
from .twilio_api import MessagesApi, TwilioMessages
from .view_watch import ViewWatch

# Handlers call Twilio (with retries): progress acks keep them from being redelivered
# mid-call, and a redelivery therefore means the earlier handler is gone.
REPLIES = ConsumerSpec(
    durable="sender-replies", stream=AGENT.name, filter_subjects=("agent.>",),
    ack_wait_s=60.0, max_deliver=8, retry_delays_s=(2.0, 5.0, 15.0, 30.0, 60.0, 120.0),
    batch=16, concurrency=16, long_running=True,
)
# What the conversation itself asks to send (notices, operators' messages, templates).
REQUESTS = ConsumerSpec(
    durable="sender-requests", stream=CONVERSATION.name,
    filter_subjects=(f"conversation.*.{OutboundMessageRequested.TYPE}",),
    ack_wait_s=60.0, max_deliver=8, retry_delays_s=(2.0, 5.0, 15.0, 30.0, 60.0, 120.0),
    batch=16, concurrency=16, long_running=True,
)
STATUSES = ConsumerSpec(
    durable="sender-statuses", stream=GATEWAY.name,
    filter_subjects=(f"gateway.{DeliveryStatusReported.TYPE}",),
    ack_wait_s=60.0, max_deliver=10, retry_delays_s=(0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
    batch=32, concurrency=16, long_running=True,
)
TIMERS = ConsumerSpec(
    durable="sender-part-timeouts", stream=SENDER.name,
    filter_subjects=(f"sender.*.{PartTimeoutDue.TYPE}",),
    ack_wait_s=60.0, max_deliver=8, retry_delays_s=(2.0, 5.0, 15.0, 30.0, 60.0),
    batch=16, concurrency=16, long_running=True,
)


def build(settings: SenderSettings | None = None, *, api: MessagesApi | None = None) -> Service:
    settings = settings or SenderSettings()
    cipher = TokenCipher.from_env()  # fail at start-up, naming the setting
    messages_api = api or TwilioMessages(settings.twilio_api_base_url, settings.twilio_timeout_s)
    service = Service(settings, owns=(SENDER,), reads=(AGENT, GATEWAY, CONVERSATION))
    service.app.title = "Switchboard sender"

    @service.on_start
    async def wire(svc: Service) -> None:
        js = svc.js
        directory = await attach_directory(svc, cipher)
        bucket = await open_messages_bucket(js, settings.messages_kv_ttl_days,
                                            settings.messages_kv_replicas)
        leases = await open_leases_bucket(js, settings.messages_kv_replicas)
        views = ViewWatch(js, ConversationViews(js).view_of, settings.view_watch)
        await views.watch()  # (once the conversation service has created the bucket)
        sender = Sender(settings, ReplyStore(js, svc.publisher(SENDER), bucket), directory,
                        messages_api,
                        SenderPacer(settings.rate_limit_per_s, await attach_limits(svc)),
                        views, Leases(leases))
        svc.consume(REPLIES, Handlers().on(ReplyGenerated, sender.on_reply_generated))
        svc.consume(REQUESTS, Handlers().on(OutboundMessageRequested,
                                            sender.on_outbound_requested))
        svc.consume(STATUSES, Handlers().on(DeliveryStatusReported, sender.on_delivery_status))
        svc.consume(TIMERS, Handlers().on(PartTimeoutDue, sender.on_part_timeout))
        attach_tenant_webhooks(svc, settings, directory)

        @svc.on_stop
        async def close(_: Service) -> None:
            await views.stop()
            await messages_api.aclose()

    return service


def main() -> None:
    build().run()
