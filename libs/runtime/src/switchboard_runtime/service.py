"""The one way every service starts: connect, declare, consume, serve health, drain.

A service's composition root builds a ``Service``, registers its consumers and routes, and
calls ``run()``. Start-up waits for NATS (and Postgres) to answer, within ``STARTUP_TIMEOUT_S``,
serving ``/healthz`` and a not-ready ``/readyz`` meanwhile; past it the process exits 1 with
one line saying what it waited on. On SIGTERM it turns not-ready, stops the HTTP server, stops
fetching, lets in-flight handlers finish and ack, then drains the NATS connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, Response
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from switchboard_contracts.topology import ADVISORIES, DEADLETTER, StreamSpec

from .bus import (
    Consumer,
    ConsumerSpec,
    Handler,
    Publisher,
    ensure_input_stream,
    ensure_streams,
)
from .bus.collector import AdvisoryCollector
from .bus.deadletters import REPLAY
from .config import ServiceSettings
from .startup import StartingClient, StartupFailed, StartupTimeout, retrying
from .telemetry import configure_logging, configure_tracing, get_logger

log = get_logger(__name__)

Hook = Callable[["Service"], Awaitable[None]]


# How long stopping waits for every database connection to come back to the pool.
POOL_CLOSE_TIMEOUT_S = 5.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        owns: Sequence[StreamSpec] = (),
        reads: Sequence[StreamSpec] = (),
        app: FastAPI | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.owns = tuple(owns)
        self.reads = tuple(reads)
        self.app = app or FastAPI(title=f"switchboard {self.name}")
        self._consumer_defs: list[tuple[ConsumerSpec, Mapping[str, Handler]]] = []
        self._consumers: list[Consumer] = []
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._nc: NATS | None = None
        self._client: StartingClient | None = None  # set as start-up begins to connect
        self._waiting_on: str | None = None  # what start-up waits for outside the client
        self._connect_failures = 0
        self._js: JetStreamContext | None = None
        self.db: asyncpg.Pool | None = None
        self.ready = False
        self._checks: dict[str, Callable[[], bool]] = {}
        self._add_health_routes()

    # -- composition -------------------------------------------------------------------------
    def consume(self, spec: ConsumerSpec, handlers: Mapping[str, Handler]) -> None:
        self._consumer_defs.append((spec, handlers))

    def on_start(self, hook: Hook) -> Hook:
        self._on_start.append(hook)
        return hook

    def add_check(self, name: str, check: Callable[[], bool]) -> None:
        """One more readiness condition (e.g. a cache loaded)."""
        self._checks[name] = check

    def on_stop(self, hook: Hook) -> Hook:
        self._on_stop.append(hook)
        return hook

    @property
    def nc(self) -> NATS:
        assert self._nc is not None, "service not started"
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "service not started"
        return self._js

    def publisher(self, stream: StreamSpec) -> Publisher:
        return Publisher(self.js, stream.name)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, declare, run the start hooks and start consuming, waiting for NATS and
        Postgres within ``STARTUP_TIMEOUT_S``; past it, ``StartupTimeout``."""
        configure_logging(self.name, self.settings.log_level)
        configure_tracing(self.name, self.settings.otel_exporter_otlp_endpoint)
        budget = self.settings.startup_timeout_s
        try:
            async with asyncio.timeout(budget):
                await self._start()
        except TimeoutError:
            waiting_on = self.waiting_on or "the start hooks"
            if self._client is not None:
                await self._client.close()
            raise StartupTimeout(
                f"not started within STARTUP_TIMEOUT_S ({budget:g} s): still waiting on "
                f"{waiting_on}") from None
        except asyncio.CancelledError:  # stopped while starting: no reconnect loop left behind
            if self._nc is None and self._client is not None:
                await self._client.close()
            raise
        finally:
            if self._client is not None:
                self._client.starting = False  # from now on requests fail fast
        self.ready = True
        log.info("service started", consumers=[c.spec.durable for c in self._consumers])

    @property
    def waiting_on(self) -> str | None:
        """What start-up is waiting for now (None: nothing, or started)."""
        if self._waiting_on is not None:
            return self._waiting_on
        return self._client.waiting_on if self._client is not None else None

    async def _start(self) -> None:
        self._client = StartingClient()
        self._waiting_on = "NATS"
        await self._client.connect(
            self.settings.nats_url.split(","),  # a cluster: every node's URL, comma-separated
            name=self.name,
            **self.settings.nats_connect_options(),  # its own user (NATS_USER, NATS_PASSWORD)
            # Replies come to an inbox only this service may subscribe to (its NATS user's
            # permissions), so no other service can read its KV gets or API answers.
            inbox_prefix=f"_INBOX_{self.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # a float, typed int
            error_cb=self._on_nats_error,
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
        )
        self._nc, self._waiting_on = self._client, None
        self._js = self._nc.jetstream()
        await ensure_streams(self._js, (*self.owns, DEADLETTER, REPLAY, ADVISORIES))
        for spec in self.reads:  # so a service can start before the owners of its inputs
            await ensure_input_stream(self._js, spec)
        if self.settings.database_url:
            self.db = await self._create_pool(self.settings.database_url)
        for hook in self._on_start:
            await hook(self)
        # What start-up made (modules, clients, models) lives as long as the process: out of
        # the collector's reach, so full collections stop rescanning it per event (5-7 us of
        # an event's CPU in the event-layer benchmark, 0.1 us frozen).
        gc.freeze()
        self._consumers = [
            Consumer(self._js, spec, handlers) for spec, handlers in self._consumer_defs
        ]
        if self._consumers:
            self._consumers.append(
                AdvisoryCollector(self._js, self.name,
                                  [s for c in self._consumers for s in c.specs])
            )
        for consumer in self._consumers:
            await consumer.start()

    async def _create_pool(self, url: str) -> asyncpg.Pool:
        self._waiting_on = "Postgres"
        pool = await retrying(
            "Postgres", lambda: asyncpg.create_pool(url, min_size=1, max_size=10),
            (OSError, asyncpg.CannotConnectNowError),  # down, or up and still starting
        )
        self._waiting_on = None
        return pool

    async def stop(self) -> None:
        self.ready = False
        await asyncio.gather(*(c.stop() for c in self._consumers))
        for hook in reversed(self._on_stop):
            await hook(self)
        if self._nc is not None and self._nc.is_connected:
            await self._nc.drain()
        if self.db is not None:
            try:
                await asyncio.wait_for(self.db.close(), POOL_CLOSE_TIMEOUT_S)
            except TimeoutError:  # a connection never released: do not wait for it forever
                log.error("database connections still in use at shutdown; closed abruptly")
                self.db.terminate()
        log.info("service stopped")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``stop``), then drain gracefully."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = _Server(uvicorn.Config(
            self.app, host=self.settings.http_host, port=self.settings.http_port,
            log_config=None, access_log=False, lifespan="off",
        ))
        # Health answers while start-up waits for NATS: alive, and not ready until started.
        http = asyncio.create_task(server.serve())
        try:
            if await self._start_unless(stop):
                await stop.wait()
        except BaseException:
            server.should_exit = True
            await http
            raise
        log.info("draining")
        server.should_exit = True
        try:
            await asyncio.wait_for(
                asyncio.gather(http, self.stop()), timeout=self.settings.drain_timeout_s
            )
        except TimeoutError:
            log.error("drain timed out; in-flight events will be redelivered")

    async def _start_unless(self, stop: asyncio.Event) -> bool:
        """Start, unless told to stop first (then the start is abandoned): whether it started."""
        starting = asyncio.create_task(self.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if starting.done():
            starting.result()  # its exception, if it failed
            return True
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        log.info("stopped during start-up", waiting_on=self.waiting_on)
        return False

    def run(self) -> None:
        import uvloop

        try:
            uvloop.run(self.serve())
        except StartupFailed as exc:  # one clear line, not a traceback, then exit 1
            log.error("start-up gave up", reason=str(exc))
            raise SystemExit(1) from None

    # -- health ------------------------------------------------------------------------------
    def _add_health_routes(self) -> None:
        app = self.app

        @app.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz", include_in_schema=False)
        async def readyz(response: Response) -> dict[str, str]:
            checks = await self.readiness()
            if not all(v == "ok" for v in checks.values()):
                response.status_code = 503
            return checks

        @app.get("/metrics", include_in_schema=False)
        async def metrics(request: Request) -> Response:
            # OpenMetrics when the scraper asks for it (Prometheus does with exemplar storage
            # on): the only format that carries the histograms' trace exemplars.
            encode, content_type = choose_encoder(request.headers.get("accept", ""))
            return Response(encode(REGISTRY), media_type=content_type)

    async def readiness(self) -> dict[str, str]:
        waiting_on = self.waiting_on
        checks = {"service": "ok" if self.ready else
                  f"starting: waiting on {waiting_on}" if waiting_on else "starting or draining"}
        checks["nats"] = "ok" if self._nc is not None and self._nc.is_connected else "down"
        for name, check in self._checks.items():
            checks[name] = "ok" if check() else "not ready"
        if self.settings.database_url:
            try:
                assert self.db is not None
                async with asyncio.timeout(2):
                    await self.db.fetchval("SELECT 1")
                checks["postgres"] = "ok"
            except Exception:
                checks["postgres"] = "down"
        return checks

    # -- NATS callbacks ----------------------------------------------------------------------
    async def _on_nats_error(self, exc: Exception) -> None:
        if self._nc is None and self._client is not None:  # the first connect, still trying
            self._connect_failures += 1
            # nats-py tries again every reconnect_time_wait: log the 1st, 2nd, 4th, 8th... only
            if self._connect_failures & (self._connect_failures - 1) == 0:
                log.warning("start-up waiting", waiting_on="NATS", error=type(exc).__name__,
                            attempt=self._connect_failures)
            return
        if self._client is not None:
            self._client.note_error(exc)
        log.warning("nats error", error=type(exc).__name__)

    async def _on_disconnect(self) -> None:
        log.warning("nats disconnected")

    async def _on_reconnect(self) -> None:
        log.info("nats reconnected")
