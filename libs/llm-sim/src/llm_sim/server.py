"""``llm-sim``: serve the OpenAI-compatible simulator (for ``OPENAI_BASE_URL``)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from .app import create_app

app = typer.Typer(help="Run the OpenAI-compatible LLM simulator.", add_completion=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="LLM_SIM_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="LLM_SIM_PORT")] = 8091,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="LLM_SIM_API_KEY",
                     help="refuse requests without this bearer token (401)"),
    ] = None,
) -> None:
    """Serve /v1/chat/completions and the /sim admin API."""
    typer.echo(f"llm-sim: OPENAI_BASE_URL=http://{host}:{port}/v1")
    uvicorn.run(create_app(api_key=api_key), host=host, port=port, log_level="info",
                ws="none", timeout_graceful_shutdown=3)
