"""``switchboard-projection-admin``: migrate the schema, rebuild the read models, show status.

``rebuild`` is safe while projection services run: they notice the new epoch and replay too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
import nats
import typer
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.table import Table
from switchboard_runtime.bus import ensure_input_stream
from switchboard_runtime.config import NatsUser
from switchboard_runtime.telemetry import configure_logging

from .consumer import PROJECTED, durable_for
from .fence import holder
from .rebuild import READ_MODELS
from .rebuild import rebuild as rebuild_read_models
from .schema import apply_migrations
from .settings import ProjectionSettings

app = typer.Typer(help="Operate the projection's read models.", no_args_is_help=True,
                  add_completion=False)
console = Console()

DatabaseUrl = Annotated[str, typer.Option(envvar="DATABASE_URL", help="Postgres URL")]
NatsUrl = Annotated[str, typer.Option(envvar="NATS_URL", help="NATS server URL")]
DEFAULT_NATS = "nats://127.0.0.1:4222"


@app.callback()
def _configure() -> None:
    # JSON logs on stderr, so stdout stays the command's own output.
    configure_logging("switchboard-projection-admin", os.environ.get("LOG_LEVEL", "WARNING"))


@app.command()
def migrate(database_url: DatabaseUrl) -> None:
    """Apply pending schema migrations (tenants' and the projection's)."""
    count = apply_migrations(database_url)
    console.print(f"{count} migration(s) applied")


@app.command()
def rebuild(
    database_url: DatabaseUrl,
    nats_url: NatsUrl = DEFAULT_NATS,
    timeout_s: Annotated[float, typer.Option(help="give up after this long")] = 3600.0,
) -> None:
    """Empty the read models and replay every stream from its start; returns when caught up."""
    apply_migrations(database_url)
    settings = ProjectionSettings(database_url=database_url, nats_url=nats_url)

    async def run() -> dict[str, int]:
        async with _connected(database_url, nats_url) as (pool, nc):
            for spec in PROJECTED:
                await ensure_input_stream(nc.jetstream(), spec)
            epoch = await rebuild_read_models(nc, pool, settings, timeout_s)
            console.print(f"rebuilt (epoch {epoch})")
            return {name: await pool.fetchval(f"SELECT count(*) FROM {name}")  # noqa: S608
                    for name in READ_MODELS}

    for name, count in asyncio.run(run()).items():
        console.print(f"  {name:<20} {count:>10} rows")


@app.command()
def status(database_url: DatabaseUrl, nats_url: NatsUrl = DEFAULT_NATS) -> None:
    """Each stream's checkpoint beside its consumer's backlog, and which replica writes."""

    async def run() -> Table:
        table = Table("stream", "checkpoint", "processed", "pending", "unacked", "updated")
        async with _connected(database_url, nats_url) as (pool, nc):
            js = nc.jetstream()
            rows = {r["stream"]: r for r in await pool.fetch(
                "SELECT * FROM projection_checkpoints")}
            epoch = await pool.fetchval("SELECT epoch FROM projection_state")
            table.title = f"projection (epoch {epoch})"
            writer = await holder(pool)  # the replica holding the writer lease
            table.caption = (f"writer: {writer['application_name']} ({writer['client_addr']}, "
                             f"pid {writer['pid']})" if writer else "writer: none")
            for spec in PROJECTED:
                row = rows.get(spec.name)
                try:
                    info = await js.consumer_info(spec.name, durable_for(spec.name))
                    pending, unacked = str(info.num_pending), str(info.num_ack_pending)
                except NotFoundError:
                    pending = unacked = "no consumer"
                table.add_row(spec.name, str(row["last_seq"]) if row else "-",
                              str(row["processed"]) if row else "-", pending, unacked,
                              row["updated_at"].isoformat(timespec="seconds") if row else "-")
        return table

    console.print(asyncio.run(run()))


@asynccontextmanager
async def _connected(database_url: str, nats_url: str
                     ) -> AsyncIterator[tuple[asyncpg.Pool, NATS]]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    nc = await nats.connect(nats_url, **NatsUser().nats_connect_options())
    try:
        yield pool, nc
    finally:
        await nc.drain()
        await pool.close()
