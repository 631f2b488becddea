"""The read API (FastAPI, served by the projection service beside /healthz and /metrics)."""

from .errors import install_error_handlers
from .routes import instrument, read_api

__all__ = ["install_error_handlers", "instrument", "read_api"]
