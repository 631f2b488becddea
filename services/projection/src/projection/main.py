"""Composition root: the projection service (consumers, read and operator API, inbox page),
wired from its settings."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from switchboard_contracts.topology import DEADLETTER
from switchboard_runtime import Service

from .api import (
    CommandSender,
    available,
    install_error_handlers,
    instrument,
    operator_api,
    read_api,
)
from .consumer import PROJECTED
from .handoff_queue import HandoffQueueGauges
from .lease import WriterLease
from .pages import mount_pages
from .schema import apply_migrations
from .settings import ProjectionSettings

API_DESCRIPTION = """\
What happened in each conversation, and where each message is in its journey; and the
operator API (`/v1/operator/...`, `/v1/templates/send`): the queue of conversations waiting
for a person, and the commands operators give (an operator key: `add-api-key --role operator
--label <name>`; a reader key gets 403).

Authenticate with a tenant's API key, as `X-API-Key: <key>` or `Authorization: Bearer <key>`
(`switchboard-tenants add-api-key <tenant>` makes one). A key sees its own tenant's data only:
anything else answers 404, as if it did not exist. Lists are paginated with an opaque
`cursor` (`next_cursor` of the previous page).
"""


def build(settings: ProjectionSettings | None = None) -> Service:
    settings = settings or ProjectionSettings()
    app = FastAPI(title="Switchboard read API", version="1", description=API_DESCRIPTION)
    # DEADLETTER is declared by every service already; the others are read, never changed.
    service = Service(settings, reads=tuple(s for s in PROJECTED if s is not DEADLETTER),
                      app=app)
    db = available(lambda: service.db)
    app.include_router(read_api(db, settings))
    commands = CommandSender(lambda: service.nc, settings.command_timeout_s)
    app.include_router(operator_api(db, commands, settings))
    instrument(app)
    install_error_handlers(app)
    mount_pages(app)
    leases: list[WriterLease] = []
    gauges: list[HandoffQueueGauges] = []

    @service.on_start
    async def start_projecting(svc: Service) -> None:
        assert settings.database_url is not None and svc.db is not None
        if settings.migrate_on_start:
            await asyncio.to_thread(apply_migrations, settings.database_url)
        # Projects while it holds the writer lease, stands by otherwise (ready either way).
        lease = WriterLease(svc.nc, svc.db, settings)
        await lease.start()
        leases.append(lease)
        svc.add_check("projection", lease.running)
        # Every replica, writer or standby: one query on the shared read model.
        queue = HandoffQueueGauges(svc.db, settings.handoff_queue_interval_s)
        queue.start()
        gauges.append(queue)

    @service.on_stop
    async def stop_projecting(_: Service) -> None:
        for queue in gauges:
            await queue.stop()
        for lease in leases:
            await lease.stop()

    return service


def main() -> None:
    build().run()
