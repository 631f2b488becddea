"""``switchboard-transcription-model``: assemble and verify the Whisper model, print its path.

Run once at setup (or in an image build / init container) so the service's first start does
not spend the time; the service runs the same check at start-up anyway.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .model_files import ModelError, default_cache_dir, model_dir_from

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def assemble(
    cache: Annotated[Path | None, typer.Option(
        envvar="WHISPER_MODEL_CACHE",
        help="where Whisper base is assembled [default: $XDG_CACHE_HOME/switchboard/models]",
    )] = None,
    model_path: Annotated[Path | None, typer.Option(
        envvar="WHISPER_MODEL_PATH",
        help="a mounted CTranslate2 model to check instead of assembling Whisper base",
    )] = None,
) -> None:
    """Assemble (once) and verify the model; print its directory on stdout."""
    started = time.perf_counter()
    try:
        path = model_dir_from(model_path, cache or default_cache_dir())
    except ModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"model ready in {time.perf_counter() - started:.1f}s", err=True)
    typer.echo(str(path))


def main() -> None:
    app()
