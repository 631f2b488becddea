"""Static pages served by the projection's app beside the API (no build step): the operator
inbox at ``/inbox`` (ADR 0022), its files in ``projection/inbox/``, calling the operator API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

INBOX_DIR = Path(__file__).parent / "inbox"
INBOX_PATH = "/inbox"
# The inbox acts with an operator's key: it loads only its own files and calls only this API,
# and no other site may frame it (a click on "Close" there would be the operator's).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; form-action 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _PageFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_pages(app: FastAPI) -> None:
    """The inbox's files at ``/inbox`` (``/inbox/`` answers its ``index.html``), when the
    package has them."""
    if INBOX_DIR.is_dir():
        app.mount(INBOX_PATH, _PageFiles(directory=INBOX_DIR, html=True), name="inbox")
