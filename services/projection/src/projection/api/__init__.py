"""The read API (FastAPI, served by the projection service beside /healthz and /metrics)."""

from .routes import instrument, read_api

__all__ = ["instrument", "read_api"]
