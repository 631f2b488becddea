"""JSON logs through structlog, bound to correlation_id/tenant_id/trace_id, always redacted.

The standard library's loggers (uvicorn, nats, the SDKs) go through the same processors so
nothing is written unredacted; the SDKs' request loggers only from WARNING.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from .redaction import redact

# Libraries that log each HTTP request's URL, query and parameters at INFO or DEBUG (the
# Twilio SDK's lookups carry phone numbers URL-encoded; media URLs carry account and message
# ids): only their warnings are worth a line.
_REQUEST_LOGGERS = ("twilio", "httpx", "httpcore", "urllib3", "openai", "uvicorn.access",
                    "aiohttp.access", "aiohttp.client")

# Loggers a library may have given a handler of its own and ``propagate = False`` (uvicorn's
# default log config does, for these three, whenever a uvicorn.Config without
# ``log_config=None`` is created in the process): their lines would skip the redaction.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", *_REQUEST_LOGGERS)

_CONTEXT_KEYS = frozenset({"correlation_id", "tenant_id", "event_id", "event_type", "trace_id",
                           "span_id", "service", "level", "timestamp", "logger", "consumer"})


def _add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key not in _CONTEXT_KEYS:
            event[key] = redact(value, key)
    return event


def configure_logging(service: str, level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
        structlog.processors.format_exc_info,
        _redact,
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        # Through the root handler (so the redaction), never a handler of their own.
        library.handlers.clear()
        library.propagate = True
        library.setLevel(max(logging.WARNING, root.level) if name in _REQUEST_LOGGERS
                         else logging.NOTSET)  # NOTSET: the root's level
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
