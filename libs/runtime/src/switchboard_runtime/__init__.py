"""Switchboard shared runtime: JetStream bus, telemetry, settings, service lifecycle."""

from .config import ConfigError, Environment, ServiceSettings
from .service import Service

__all__ = ["ConfigError", "Environment", "Service", "ServiceSettings"]
