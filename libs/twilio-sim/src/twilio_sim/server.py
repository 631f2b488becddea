"""``twilio-sim``: run the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from .app import create_app
from .config import SimConfig, load_config

app = typer.Typer(help="Run the Twilio simulator.", add_completion=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="TWILIO_SIM_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TWILIO_SIM_PORT")] = 8090,
    config: Annotated[
        Path | None,
        typer.Option(envvar="TWILIO_SIM_CONFIG", exists=True, dir_okay=False,
                     help="accounts and numbers, .toml or .json"),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="TWILIO_SIM_PUBLIC_URL", help="base of media URLs"),
    ] = None,
) -> None:
    settings = load_config(config) if config else SimConfig()
    if public_url:
        settings.public_url = public_url
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", ws="none",
                timeout_graceful_shutdown=3)
