"""``switchboard-dev``: run the local stack (``make run``)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .stack import Stack

app = typer.Typer(help="Local development stack on embedded NATS and Postgres.",
                  no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """Local development stack on embedded NATS and Postgres."""


@app.command()
def run(
    state: Annotated[Path, typer.Option(help="where data and logs are kept")] = Path(".run"),
) -> None:
    """Start NATS, Postgres and every service; Ctrl-C stops everything."""
    stack = Stack.prepare(state.resolve())
    stopping = {"now": False}

    def request_stop(*_: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        console.print("[bold]Starting Switchboard[/bold] (embedded NATS and Postgres)...")
        stack.start()
        env_file = stack.root / "stack.env"
        env_file.write_text(f"NATS_URL={stack.nats.url}\nDATABASE_URL={stack.postgres.url}\n")
        console.print(f"  NATS JetStream  {stack.nats.url}  (monitoring "
                      f"http://127.0.0.1:{stack.nats.monitor_port})")
        console.print(f"  Postgres        {stack.postgres.url}")
        for process in stack.processes:
            where = f"http://127.0.0.1:{process.port}" if process.port else ""
            console.print(f"  {process.name:<15} {where}")
        console.print(f"  settings for scripts: {env_file}; logs: {stack.root / 'logs'}")
        console.print("Dead letters: [cyan]uv run switchboard-deadletters list[/cyan] "
                      f"(NATS_URL={stack.nats.url})")
        console.print("[green]Ready.[/green] Ctrl-C stops everything.")
        stack.watch(lambda: stopping["now"])
    finally:
        console.print("Stopping...")
        stack.stop()
        console.print("Stopped.")
