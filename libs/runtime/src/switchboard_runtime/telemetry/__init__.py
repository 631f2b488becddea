from .logging import configure_logging, get_logger
from .redaction import redact, redact_text
from .tracing import configure_tracing, extract_context, inject_headers

__all__ = [
    "configure_logging",
    "configure_tracing",
    "extract_context",
    "get_logger",
    "inject_headers",
    "redact",
    "redact_text",
]
