"""The read API and the operator API (FastAPI, served by the projection service beside
/healthz and /metrics)."""

from .commands import CommandSender
from .errors import install_error_handlers
from .operator import operator_api
from .routes import available, instrument, read_api

__all__ = ["CommandSender", "available", "install_error_handlers", "instrument", "operator_api",
           "read_api"]
