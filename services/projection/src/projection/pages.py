"""Static pages served by the projection's app beside the API (no build step): the operator
inbox at ``/inbox`` (ADR 0022), its files in ``projection/inbox/``, calling the operator API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

INBOX_DIR = Path(__file__).parent / "inbox"
INBOX_PATH = "/inbox"


def mount_pages(app: FastAPI) -> None:
    """The inbox's files at ``/inbox`` (``/inbox/`` answers its ``index.html``), when the
    package has them."""
    if INBOX_DIR.is_dir():
        app.mount(INBOX_PATH, StaticFiles(directory=INBOX_DIR, html=True), name="inbox")
