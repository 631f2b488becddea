"""``switchboard-deadletters``: list, show and replay dead-lettered events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import nats
import typer
from nats.js import JetStreamContext
from rich.console import Console
from rich.table import Table

from ..config import NatsUser
from ..telemetry import redact
from .store import NotReplayable, get_dead_letter, list_dead_letters, replay

T = TypeVar("T")

app = typer.Typer(help="Inspect and replay events that consumers gave up on.", no_args_is_help=True)
console = Console()
NatsUrl = Annotated[str, typer.Option(envvar="NATS_URL", help="NATS server URL")]


def _with_js(nats_url: str, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    async def main() -> T:
        nc = await nats.connect(nats_url, **NatsUser().nats_connect_options())
        try:
            return await work(nc.jetstream())
        finally:
            await nc.drain()

    return asyncio.run(main())


@app.command("list")
def list_cmd(nats_url: NatsUrl = "nats://127.0.0.1:4222", limit: int = 100) -> None:
    """List dead letters, oldest first, with their reason."""
    items = _with_js(nats_url, lambda js: list_dead_letters(js, limit))
    table = Table("seq", "when", "consumer", "event", "deliveries", "reason", "error")
    for item in items:
        r = item.record
        table.add_row(str(item.seq), r.dead_lettered_at.isoformat(timespec="seconds"),
                      f"{r.stream}/{r.consumer}", r.event_type or "?", str(r.deliveries),
                      r.reason, (r.error or "")[:80])
    console.print(table)
    console.print(f"{len(items)} dead letter(s)")


@app.command()
def show(seq: int, nats_url: NatsUrl = "nats://127.0.0.1:4222") -> None:
    """Show one dead letter with its (redacted) original event."""
    item = _with_js(nats_url, lambda js: get_dead_letter(js, seq))
    if item is None:
        console.print(f"[red]no dead letter at sequence {seq}[/red]")
        raise typer.Exit(1)
    record = item.record.model_dump(mode="json", exclude={"payload_b64"})
    try:
        record["event"] = redact(json.loads(item.record.payload))
    except ValueError:
        record["event"] = "<not JSON>"
    console.print_json(data=record)


@app.command("replay")
def replay_cmd(
    seq: Annotated[int | None, typer.Argument(help="sequence to replay")] = None,
    all_: Annotated[bool, typer.Option("--all", help="replay every dead letter")] = False,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
) -> None:
    """Send dead-lettered events back to the consumer that failed them, and only to it.

    Each goes to that consumer's replay durable (REPLAY stream, replay.<stream>.<consumer>),
    never to its original subject: its original stream is left as it was, and no other
    consumer sees it again.
    A dead letter whose consumer takes no replays is left in place (exit code 1).
    """
    if (seq is None) == (not all_):
        console.print("[red]give a sequence or --all[/red]")
        raise typer.Exit(2)

    async def work(js: JetStreamContext) -> tuple[int, int]:
        targets = [seq] if seq is not None else [i.seq for i in await list_dead_letters(js, 10**9)]
        left = 0
        for target in targets:
            try:
                ack = await replay(js, target)
            except NotReplayable as exc:
                console.print(f"[yellow]{exc}[/yellow]")
                left += 1
                continue
            console.print(f"replayed dead letter {target} as {ack.stream}#{ack.seq}")
        return len(targets) - left, left

    try:
        replayed, left = _with_js(nats_url, work)
    except LookupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{replayed} replayed" + (f", {left} left in place" if left else ""))
    if left:
        raise typer.Exit(1)
