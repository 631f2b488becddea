"""``switchboard-trace <correlation_id>``: a message's journey as a waterfall, from the read API.

Each row is one hop (an event, or a dead letter): when it happened since the first, the
service that produced it, and the latency since the previous hop, drawn as a bar.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

app = typer.Typer(help="Draw a correlation_id's journey through the services.",
                  add_completion=False)
console = Console()
errors = Console(stderr=True)

COLOURS = {"gateway": "cyan", "conversation": "green", "transcription": "magenta",
           "agent": "yellow", "sender": "blue"}
DEFAULT_URL = "http://127.0.0.1:8085"


def fetch_hops(api_url: str, api_key: str, correlation_id: str) -> list[dict[str, Any]]:
    """Every page of the timeline; raises typer.Exit with a message on 401/404."""
    hops: list[dict[str, Any]] = []
    cursor: str | None = None
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=10.0,
                      headers={"X-API-Key": api_key}) as client:
        while True:
            params: dict[str, str | int] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            response = client.get(f"/v1/timelines/{correlation_id}", params=params)
            if response.status_code == 401:
                raise _fail("the read API refused the key (SB_API_KEY / --api-key)", 2)
            if response.status_code == 404:
                raise _fail(f"no timeline for {correlation_id} under this key's tenant", 1)
            response.raise_for_status()
            page = response.json()
            hops.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return hops


def bar(start_ms: float, end_ms: float, total_ms: float, width: int) -> str:
    """The span from the previous hop to this one, on a ``width``-character axis."""
    if total_ms <= 0:
        return "▏"
    first = min(width - 1, int(start_ms / total_ms * width))
    last = max(first + 1, round(end_ms / total_ms * width))
    return " " * first + "█" * (min(last, width) - first)


def waterfall(correlation_id: str, hops: list[dict[str, Any]], width: int = 40) -> Table:
    total = max((h["since_start_ms"] for h in hops), default=0.0)
    table = Table(title=f"correlation_id {escape(correlation_id)}",
                  caption=f"{len(hops)} hops, {total:.0f} ms from first to last")
    table.add_column("+ms", justify="right")
    table.add_column("service")
    table.add_column("event")
    table.add_column("latency", justify="right")
    table.add_column("waterfall", no_wrap=True)
    previous = 0.0
    for hop in hops:
        at, latency = hop["since_start_ms"], hop.get("since_previous_ms")
        colour = COLOURS.get(hop["service"], "red")  # red: a dead letter's consumer
        table.add_row(
            f"{at:.0f}", Text(hop["service"], style=colour), escape(hop["type"]),
            "" if latency is None else f"{latency:.0f} ms",
            Text(bar(previous, at, total, width), style=colour),
        )
        previous = at
    return table


@app.command()
def trace(
    correlation_id: Annotated[str, typer.Argument(help="the correlation_id (a MessageSid)")],
    api_url: Annotated[str, typer.Option(envvar="SB_READ_API_URL",
                                         help="the projection's read API")] = DEFAULT_URL,
    api_key: Annotated[str, typer.Option(envvar="SB_API_KEY", help="a tenant's API key")] = "",
    width: Annotated[int, typer.Option(min=10, max=200, help="bar width")] = 40,
) -> None:
    """Print the timeline of CORRELATION_ID as a waterfall, with each hop's latency."""
    if not api_key:
        raise _fail("an API key is needed: --api-key or SB_API_KEY", 2)
    try:
        hops = fetch_hops(api_url, api_key, correlation_id)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot read {api_url}: {type(exc).__name__}", 1) from None
    console.print(waterfall(correlation_id, hops, width))


def _fail(message: str, code: int) -> typer.Exit:
    errors.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)
