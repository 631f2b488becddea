"""A durable pull consumer with explicit ack, bounded redelivery and dead letters.

Batches come from the lean pull fetcher (``pull.py``): a long poll while there is nothing to
do, asked again after a reconnect. Per message: decode the envelope, type its payload, run the
handler inside a consumer span that continues the producer's trace, then ack. A failing
handler is nak'd with a delay that grows with the delivery count (the server's BackOff only
applies to ack timeouts); on its last delivery, a poison message, or an unknown major
version, the event goes to the dead-letter stream with the reason and is terminated.

Each consumer also reads its own replay subject (a second durable on the REPLAY stream), where
an operator sends its dead letters back, with the same handlers and rules; and it reports its
lag from the server on a timer, so a stuck consumer shows a growing backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from switchboard_contracts import Envelope, Event, Registry, UnknownEventType, UnsupportedVersion
from switchboard_contracts import registry as default_registry

from ..telemetry import get_logger
from ..telemetry.metrics import (
    CONSUMER_ACK_PENDING,
    CONSUMER_LAG,
    EVENTS_HANDLED,
    EVENTS_REDELIVERED,
    HANDLER_BUCKETS,
    HANDLER_SECONDS,
    TracedHistogram,
)
from ..telemetry.spans import start_consumer_span
from .deadletters import REPLAY, dead_letter, replay_durable, replay_subject
from .pull import ENDED_QUIETLY, PullFetcher
from .streams import ensure_input_stream

log = get_logger(__name__)

Handler = Callable[[Event[Any]], Awaitable[None]]

# How long an idle consumer's pull request waits for a message (one request per LONG_POLL_S
# when idle; a message published meanwhile is delivered at once).
LONG_POLL_S = 30.0


class PermanentError(Exception):
    """Raised by a handler for an event that can never succeed: dead-letter it now."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Which delivery of its event a handler is running (1 = the first)."""

    number: int
    max_deliver: int
    stream_seq: int = 0
    """The event's sequence in its stream (0: unknown)."""

    @property
    def last(self) -> bool:
        """No redelivery follows if this one fails: time to record a failure for the user."""
        return 0 < self.max_deliver <= self.number


_DELIVERY: ContextVar[Delivery | None] = ContextVar("switchboard_delivery", default=None)


def current_delivery() -> Delivery | None:
    """The delivery the running handler was called for (None outside a consumer)."""
    return _DELIVERY.get()


class ConsumerOverrides(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    ack_wait_s: float | None = None
    max_deliver: int | None = None
    max_ack_pending: int | None = None
    concurrency: int | None = None
    lag_interval_s: float | None = None


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    durable: str
    stream: str
    filter_subjects: tuple[str, ...]
    ack_wait_s: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 256
    # Delay before redelivery after the n-th failure (the last value repeats).
    retry_delays_s: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    batch: int = 16
    concurrency: int = 1
    # Long handlers (LLM calls, transcription) send progress acks so they are not redelivered.
    long_running: bool = False
    # How often the lag (pending and unacknowledged messages) is read from the server.
    lag_interval_s: float = 10.0

    def with_env_overrides(self) -> ConsumerSpec:
        """Apply ``SB_CONSUMER_<DURABLE>_<SETTING>`` (durable upper-cased, '-' as '_')."""
        prefix = f"SB_CONSUMER_{self.durable.upper().replace('-', '_')}_"
        found = ConsumerOverrides(_env_prefix=prefix)
        changes = {k: v for k, v in found.model_dump().items() if v is not None}
        return replace(self, **changes) if changes else self

    def config(self) -> ConsumerConfig:
        many = len(self.filter_subjects) > 1
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=None if many else self.filter_subjects[0],
            filter_subjects=list(self.filter_subjects) if many else None,
        )

    def retry_delay(self, deliveries: int) -> float:
        return self.retry_delays_s[min(deliveries, len(self.retry_delays_s)) - 1]

    def for_replays(self) -> ConsumerSpec:
        """The same consumer's second durable, on its replay subject."""
        return replace(self, durable=replay_durable(self.durable), stream=REPLAY.name,
                       filter_subjects=(replay_subject(self.stream, self.durable),))


class Consumer:
    # Whether dead letters of this consumer can be replayed to it (a second durable).
    takes_replays: ClassVar[bool] = True

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        handlers: Mapping[str, Handler],
        registry: Registry = default_registry,
    ) -> None:
        self.spec = spec.with_env_overrides()
        self.replay_spec = self.spec.for_replays() if self.takes_replays else None
        self._js = js
        self._handlers = dict(handlers)
        self._registry = registry
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(self.spec.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._fetchers: list[PullFetcher] = []
        self._lag_task: asyncio.Task[None] | None = None
        # Per (durable, event type): the latency and "ok" series, looked up once, not per event.
        self._series: dict[tuple[str, str], tuple[TracedHistogram, Counter]] = {}

    @property
    def specs(self) -> tuple[ConsumerSpec, ...]:
        """The durables this consumer reads: its own, and its replay durable if any."""
        return (self.spec,) if self.replay_spec is None else (self.spec, self.replay_spec)

    async def start(self) -> None:
        await self._js.add_consumer(self.spec.stream, self.spec.config())
        if self.replay_spec is not None:
            await ensure_input_stream(self._js, REPLAY)
            await self._js.add_consumer(REPLAY.name, self.replay_spec.config())
        for spec in self.specs:
            fetcher = PullFetcher(self._js._nc, spec.stream, spec.durable,
                                  api_prefix=self._js._prefix)
            await fetcher.start()
            self._fetchers.append(fetcher)
        self._loops = [asyncio.create_task(self._run(spec, fetcher),
                                           name=f"consumer:{spec.durable}")
                       for spec, fetcher in zip(self.specs, self._fetchers, strict=True)]
        self._lag_task = asyncio.create_task(self._report_lag(),
                                             name=f"consumer-lag:{self.spec.durable}")

    async def stop(self) -> None:
        """Stop fetching, let in-flight handlers finish (and ack), then return."""
        self._stopping.set()
        for fetcher in self._fetchers:  # a waiting long poll returns; the rest goes back
            await self._hand_back(await fetcher.stop())
        if self._lag_task is not None:  # nothing to finish: not worth a wait in the drain
            self._lag_task.cancel()
        if self._loops:
            await asyncio.gather(*self._loops)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _run(self, spec: ConsumerSpec, fetcher: PullFetcher) -> None:
        try:
            while not self._stopping.is_set():
                await self._take(spec, fetcher)
        finally:
            await self._hand_back(await fetcher.stop())

    async def _take(self, spec: ConsumerSpec, fetcher: PullFetcher) -> None:
        """Fetch a batch (a long poll when there is none) and hand it to the handlers."""
        try:
            msgs = await fetcher.fetch(spec.batch, wait_s=LONG_POLL_S)
        except Exception:  # the connection closed: not a hot loop meanwhile
            log.warning("fetch failed", consumer=spec.durable, exc_info=True)
            await self._pause(1.0)
            return
        if not msgs:
            if fetcher.status is not None and fetcher.status not in ENDED_QUIETLY:
                # The consumer deleted, a leader change, JetStream away: ask again shortly.
                log.warning("pull request refused", consumer=spec.durable, status=fetcher.status)
                await self._pause(1.0)
            return
        if self.spec.concurrency == 1:  # in order, without a task per message
            for index, msg in enumerate(msgs):
                if self._stopping.is_set():
                    await self._hand_back(msgs[index:])
                    return
                async with self._slots:  # one at a time across both durables too
                    await self._process(msg)
            return
        for index, msg in enumerate(msgs):
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                await self._hand_back(msgs[index:])
                return
            task = asyncio.create_task(self._process(msg))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _report_lag(self) -> None:
        """Read each durable's backlog from the server every lag_interval_s: set at delivery
        only, a stuck consumer would show its last value."""
        while True:
            for spec in self.specs:
                try:
                    info = await self._js.consumer_info(spec.stream, spec.durable)
                except Exception:  # NATS away or the consumer gone: try again next round
                    log.debug("consumer info failed", consumer=spec.durable, exc_info=True)
                    continue
                CONSUMER_LAG.labels(spec.durable).set(info.num_pending or 0)
                CONSUMER_ACK_PENDING.labels(spec.durable).set(info.num_ack_pending or 0)
            await asyncio.sleep(self.spec.lag_interval_s)

    def _durable_of(self, msg: Msg) -> str:
        """Which durable delivered it (its own or the replay one): the label of its metrics."""
        return msg.metadata.consumer or self.spec.durable

    @staticmethod
    async def _hand_back(msgs: list[Msg]) -> None:
        # Fetched but not started: nak at once so another replica takes them (a nak lost
        # with the connection: redelivered after ack_wait).
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _process(self, msg: Msg) -> None:
        delivered = _delivered(msg)
        durable = delivered.consumer or self.spec.durable
        if delivered.number > 1:
            EVENTS_REDELIVERED.labels(durable).inc()
        try:
            envelope = Envelope.from_bytes(msg.data)
        except ValidationError as exc:
            await self._reject(msg, "malformed envelope", _errors(exc))
            return
        handler = self._handlers.get(envelope.type)
        if handler is None:  # other consumers of the stream handle it
            EVENTS_HANDLED.labels(durable, envelope.type, "ignored").inc()
            await msg.ack()
            return
        try:
            event = self._registry.decode(envelope)
        except (UnsupportedVersion, UnknownEventType) as exc:
            await self._reject(msg, f"unsupported version: {exc}", None, envelope.type)
            return
        except ValidationError as exc:
            await self._reject(msg, f"invalid {envelope.type} payload", _errors(exc), envelope.type)
            return
        await self._handle(msg, event, handler, durable, delivered)

    async def _handle(self, msg: Msg, event: Event[Any], handler: Handler, durable: str,
                      delivered: _Delivered) -> None:
        env = event.envelope
        deliveries = delivered.number
        # The log context bound and reset by token, the span made current by hand: what
        # bound_contextvars and start_as_current_span do, without their generator context
        # managers and the scan of the whole context (about 15 us per event together).
        log_context = structlog.contextvars.bind_contextvars(
            correlation_id=env.correlation_id, tenant_id=env.tenant_id,
            event_id=str(env.event_id), event_type=env.type, consumer=durable,
        )
        span = start_consumer_span(f"process {env.type}", {
            "messaging.system": "nats",
            "messaging.consumer.group.name": durable,
            "messaging.nats.deliveries": deliveries,
            "switchboard.correlation_id": env.correlation_id,
        }, msg.headers)
        current = otel_context.attach(trace.set_span_in_context(span))
        try:
            started = time.perf_counter()
            progress = self._keep_alive(msg) if self.spec.long_running else None
            delivery = _DELIVERY.set(Delivery(deliveries, self.spec.max_deliver,
                                                 delivered.stream_seq))
            try:
                await handler(event)
            except PermanentError as exc:
                span.record_exception(exc)
                await self._reject(msg, "permanent failure", _describe(exc), env.type)
                return
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
                await self._failed(msg, env.type, exc, deliveries)
                return
            finally:
                _DELIVERY.reset(delivery)
                if progress is not None:
                    progress.cancel()
                seconds, handled_ok = self._series_of(durable, env.type)
                seconds.observe(time.perf_counter() - started, span)
            await msg.ack()
            handled_ok.inc()
        except BaseException as exc:  # the ack or the dead letter failed, or cancelled
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, _describe(exc)))
            raise
        finally:
            otel_context.detach(current)
            span.end()
            structlog.contextvars.reset_contextvars(**log_context)

    def _series_of(self, durable: str, env_type: str) -> tuple[TracedHistogram, Counter]:
        series = self._series.get((durable, env_type))
        if series is None:
            series = self._series[(durable, env_type)] = (
                TracedHistogram(HANDLER_SECONDS.labels(durable, env_type), HANDLER_BUCKETS),
                EVENTS_HANDLED.labels(durable, env_type, "ok"),
            )
        return series

    async def _failed(self, msg: Msg, env_type: str, exc: Exception, deliveries: int) -> None:
        if deliveries >= self.spec.max_deliver:
            await self._reject(msg, f"handler failed {deliveries} times", _describe(exc), env_type)
            return
        delay = self.spec.retry_delay(deliveries)
        log.warning("handler failed, will retry", error=_describe(exc), deliveries=deliveries,
                    retry_in_s=delay)
        EVENTS_HANDLED.labels(self._durable_of(msg), env_type, "failed").inc()
        await msg.nak(delay=delay)

    async def _reject(
        self, msg: Msg, reason: str, error: str | None, env_type: str = "unknown"
    ) -> None:
        meta = msg.metadata
        await dead_letter(
            self._js,
            stream=meta.stream,
            consumer=self.spec.durable,
            subject=msg.subject,
            stream_seq=meta.sequence.stream,
            deliveries=meta.num_delivered,
            payload=msg.data,
            headers=msg.headers,
            reason=reason,
            error=error,
        )
        EVENTS_HANDLED.labels(self._durable_of(msg), env_type, "dead_lettered").inc()
        await msg.term()

    def _keep_alive(self, msg: Msg) -> asyncio.Task[None]:
        async def beat() -> None:
            interval = max(self.spec.ack_wait_s / 3, 0.1)
            while True:
                await asyncio.sleep(interval)
                await msg.in_progress()

        return asyncio.create_task(beat())


class _Delivered(NamedTuple):
    consumer: str
    number: int  # 1 = the first delivery
    stream_seq: int


def _delivered(msg: Msg) -> _Delivered:
    """What the handling needs of the ack subject. ``msg.metadata`` parses it whole (a datetime
    and two frozen dataclasses: about 3 us per event); the usual form is read here directly:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return _Delivered(tokens[3], int(tokens[4]), int(tokens[5]))
    meta = msg.metadata  # another form (with a domain and an account): nats-py's parser
    return _Delivered(meta.consumer, meta.num_delivered, meta.sequence.stream)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _errors(exc: ValidationError) -> str:
    # Field locations and messages only: pydantic's default text echoes the input values.
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:2000]

