"""The two webhook endpoints Twilio calls: inbound WhatsApp messages and status callbacks.

Order of checks, cheapest first: size and content type, per-IP rate, form syntax, tenant,
signature, per-sender rate. Only then is an event stored; the 200 goes out after the PubAck,
and only a message stored as new keeps its place in its sender's limit (a redelivery gives it
back; a refused redelivery of a stored message still gets 200). A status
callback must name a message its signing tenant sent.
Every refusal is a short fixed reason: nothing from the input or an exception leaves here.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TypeVar

from nats.aio.client import Client as NATS
from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from switchboard_contracts import Envelope, EventData
from switchboard_contracts.events.gateway import (
    DeliveryStatusReported,
    InboundMessageReceived,
    OrphanedMessageReceived,
)
from switchboard_contracts.topology import event_subject, inbound_subject
from switchboard_runtime.bus import RetryingPublisher
from switchboard_runtime.eventsourcing import event_id_for
from switchboard_runtime.telemetry import get_logger
from switchboard_runtime.telemetry.metrics import TracedHistogram
from switchboard_tenants import TenantDirectory, TenantRoute

from . import forms
from .ledgers import SentMessages, StoredMessages
from .metrics import WEBHOOK_BUCKETS, WEBHOOK_SECONDS, WEBHOOKS
from .public_url import public_url
from .ratelimit import RateLimits
from .settings import GatewaySettings
from .signature import valid_signature

log = get_logger(__name__)
tracer = trace.get_tracer("switchboard.gateway")

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
INBOUND_PATH = "/twilio/whatsapp/inbound"
STATUS_PATH = "/twilio/whatsapp/status"
FORM = "application/x-www-form-urlencoded"
# Event ids derived from the fact, so a retried webhook names the same event everywhere.
EVENT_NAMESPACE = uuid.UUID("5b0f2f7e-3c1a-4c57-9d1e-6f5d0c7a2b11")
CORRELATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
F = TypeVar("F", forms.Inbound, forms.StatusCallback)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Webhooks:
    def __init__(
        self,
        settings: GatewaySettings,
        nc: NATS,
        directory: TenantDirectory,
        publisher: RetryingPublisher,
        limits: RateLimits,
        stored: StoredMessages,
        sent: SentMessages,
    ) -> None:
        self._settings = settings
        self._nc = nc
        self._directory = directory
        self._publisher = publisher
        self._limits = limits
        self._stored = stored
        self._sent = sent
        self._proxies = settings.proxy_networks()
        # One answer for every accepted webhook: a Response holds no per-request state, so
        # its headers are encoded once rather than on every webhook.
        self._twiml = Response(TWIML, media_type="text/xml")
        if settings.allow_unsigned_webhooks:
            log.warning("ALLOW_UNSIGNED_WEBHOOKS is on: webhook signatures are NOT checked")

    def routes(self) -> list[Route]:
        # Plain Starlette routes: the body is parsed here, so FastAPI's per-request dependency
        # machinery would only cost time on the hottest path.
        return [
            Route(path, self._endpoint(name, path, handle), methods=["POST"])
            for name, path, handle in (("inbound", INBOUND_PATH, self._inbound),
                                       ("status", STATUS_PATH, self._status))
        ]

    def _endpoint(
        self, name: str, path: str, handle: Callable[[Request], Awaitable[str]]
    ) -> Callable[[Request], Awaitable[Response]]:
        # The series looked up once, not per request; its exemplars as the bus's (at most
        # one per bucket a second).
        seconds = TracedHistogram(WEBHOOK_SECONDS.labels(name), WEBHOOK_BUCKETS)
        span_name = f"POST {path}"  # built once: the route's path is fixed
        span_attributes = {"http.request.method": "POST", "url.path": path}
        outcomes: dict[str, Counter] = {}

        def count(outcome: str) -> None:
            counter = outcomes.get(outcome)
            if counter is None:
                counter = outcomes[outcome] = WEBHOOKS.labels(name, outcome)
            counter.inc()

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            # The root of the message's trace (Twilio sends no trace context). A hand-made
            # server span: the generic ASGI instrumentation cost a third of the throughput;
            # made current by hand, not by start_as_current_span's nested context managers
            # (about 10 us less per webhook).
            span = tracer.start_span(span_name, kind=trace.SpanKind.SERVER,
                                     attributes=span_attributes)
            token = context.attach(trace.set_span_in_context(span))
            try:
                try:
                    outcome, status, response = await handle(request), 200, self._twiml
                except Refused as refused:
                    outcome, status = f"rejected_{refused.status}", refused.status
                    response = Response(refused.reason + "\n", status_code=refused.status,
                                        media_type="text/plain")
                count(outcome)
                span.set_attribute("http.response.status_code", status)
                return response
            except BaseException as exc:  # what start_as_current_span recorded, no message
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                seconds.observe(time.perf_counter() - started, span)
                context.detach(token)
                span.end()

        return endpoint

    # -- the two endpoints -------------------------------------------------------------------
    async def _inbound(self, request: Request) -> str:
        form = await self._form(request, forms.inbound)
        params = form.params
        route = self._directory.route(account_sid=form.account_sid, to=form.to_address,
                                      messaging_service_sid=form.messaging_service_sid)
        self._verify(request, params, route or self._directory_account(form.account_sid))
        token = request.headers.get("i-twilio-idempotency-token")
        if route is None:
            orphan = OrphanedMessageReceived(
                message_sid=form.message_sid, account_sid=form.account_sid,
                messaging_service_sid=form.messaging_service_sid, to_address=form.to_address,
                reason="no tenant owns this number",
            )
            await self._store(orphan, form.message_sid, form.message_sid, None)
            log.warning("orphaned message recorded", message_sid=form.message_sid)
            return "orphaned"
        if not await self._limits.take_sender(route.tenant_id, form.from_address):
            # Twilio does not retry a 4xx: a retry of a message already stored must not get one.
            if await self._stored.stored(form.message_sid, route.tenant_id):
                return "duplicate"
            raise Refused(429, "too many messages from this sender")
        event = InboundMessageReceived(
            message_sid=form.message_sid, account_sid=form.account_sid,
            messaging_service_sid=form.messaging_service_sid, from_address=form.from_address,
            to_address=form.to_address, body=form.body, message_type=form.message_type,
            profile_name=form.profile_name, wa_id=form.wa_id, media=list(form.media),
            idempotency_token=token,
        )
        # Taken before the store (so concurrent messages cannot all slip past the check);
        # given back unless stored as new: a message counts once, however often it is retried.
        try:
            outcome = await self._store(event, form.message_sid, form.message_sid,
                                        route.tenant_id)
        except Refused:
            self._limits.give_back_sender(route.tenant_id, form.from_address)
            raise
        if outcome == "accepted":
            await self._stored.remember(form.message_sid, route.tenant_id)
        else:
            self._limits.give_back_sender(route.tenant_id, form.from_address)
        return outcome

    async def _status(self, request: Request) -> str:
        form = await self._form(request, forms.status_callback)
        params = form.params
        # For a status callback our number is the sender.
        route = self._directory.route(account_sid=form.account_sid, to=form.from_address,
                                      messaging_service_sid=form.messaging_service_sid)
        route = route or self._directory_account(form.account_sid)
        self._verify(request, params, route)
        if route is None:
            raise Refused(403, "unknown account")
        sent = await self._sent.lookup(form.message_sid)
        if sent.tenant_id is not None and sent.tenant_id != route.tenant_id:
            log.warning("status callback for another tenant's message refused",
                        tenant_id=route.tenant_id, message_sid=form.message_sid)
            raise Refused(403, "not this account's message")
        if sent.sent_in is not None:  # from this status to the trace of the message's send
            trace.get_current_span().add_link(sent.sent_in, {"switchboard.link": "sent message"})
        # Not recorded yet (or recorded without a tenant): stored under the signer's tenant,
        # which every consumer scopes by, so it can touch no other tenant's message.
        # The sender puts the turn's correlation_id in the callback URL (signed by Twilio).
        correlation = request.query_params.get("correlation_id", "")
        event = DeliveryStatusReported(
            message_sid=form.message_sid, account_sid=form.account_sid, status=form.status,
            error_code=form.error_code, error_message=form.error_message,
            idempotency_token=request.headers.get("i-twilio-idempotency-token"),
        )
        return await self._store(
            event, f"{form.message_sid}:{form.status}",
            correlation if CORRELATION.match(correlation) else form.message_sid, route.tenant_id,
        )

    # -- steps -------------------------------------------------------------------------------
    async def _form(self, request: Request, parse: Callable[[dict[str, str]], F]) -> F:
        """The checked body, parsed into one endpoint's form; malformed means 400."""
        params = await self._checked_form(request)
        try:
            return parse(params)
        except forms.BadForm as exc:
            raise Refused(400, str(exc)) from None

    async def _checked_form(self, request: Request) -> dict[str, str]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != FORM:
            raise Refused(415, "expected application/x-www-form-urlencoded")
        declared = request.headers.get("content-length", "")
        limit = self._settings.max_body_bytes
        if declared.isdigit() and int(declared) > limit:
            raise Refused(413, "body too large")
        if not await self._limits.allow_ip(self._client_ip(request)):
            raise Refused(429, "too many requests")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise Refused(413, "body too large")
        try:
            return forms.parse_form(bytes(raw))
        except forms.BadForm as exc:
            raise Refused(400, str(exc)) from None

    def _directory_account(self, account_sid: str) -> TenantRoute | None:
        """Any tenant of this account: its token signs webhooks for numbers it has not
        registered with us, which is how an unknown number is verified and then orphaned."""
        return self._directory.for_account(account_sid)

    def _verify(self, request: Request, params: dict[str, str], route: TenantRoute | None) -> None:
        if self._settings.allow_unsigned_webhooks:
            log.warning("unsigned webhook accepted (ALLOW_UNSIGNED_WEBHOOKS)")
            return
        if route is None:  # no token to check a signature against: deny by default
            raise Refused(403, "unknown account")
        signature = request.headers.get("x-twilio-signature", "")
        url = public_url(request, base_url=self._settings.public_base_url,
                         trusted_proxies=self._proxies)
        if not valid_signature(route.auth_token, url, params, signature):
            raise Refused(403, "invalid signature")

    async def _store(
        self, data: EventData, msg_id: str, correlation_id: str, tenant_id: str | None
    ) -> str:
        if not self._nc.is_connected:
            raise Refused(503, "temporarily unavailable")
        envelope = Envelope.wrap(
            data, correlation_id=correlation_id, tenant_id=tenant_id,
            event_id=event_id_for(EVENT_NAMESPACE, data.TYPE, msg_id),
        )
        try:
            # A user message goes to its conversation's partition (arrival order, ADR 0017).
            subject = (inbound_subject(tenant_id, data.from_address)
                       if isinstance(data, InboundMessageReceived) and tenant_id
                       else event_subject("gateway", data.TYPE))
            stored = await self._publisher.publish(subject, envelope, msg_id=msg_id)
            return "duplicate" if stored.duplicate else "accepted"
        except Exception as exc:
            log.error("could not store webhook event", error=type(exc).__name__)
            raise Refused(503, "temporarily unavailable") from None

    def _client_ip(self, request: Request) -> str:
        """The caller's address; behind trusted proxies, the last untrusted X-Forwarded-For hop."""
        peer = request.client.host if request.client else "unknown"
        if not _in(peer, self._proxies):
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if not _in(hop, self._proxies):
                return hop
        return peer


def starting_routes() -> list[Route]:
    """The webhook paths before the gateway is wired: 503, which Twilio retries (a 404 it
    does not), for a webhook routed to a replica still starting."""

    async def starting(_: Request) -> Response:
        return Response("starting\n", status_code=503, media_type="text/plain",
                        headers={"Retry-After": "1"})

    return [Route(path, starting, methods=["POST"]) for path in (INBOUND_PATH, STATUS_PATH)]


def _in(address: str, networks: list[IPv4Network | IPv6Network]) -> bool:
    if not networks:  # no proxies configured: nothing to parse
        return False
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)
