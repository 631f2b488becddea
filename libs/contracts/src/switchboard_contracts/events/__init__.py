"""Typed payloads, one module per producing service. Importing this registers them all."""

from . import gateway

__all__ = ["gateway"]
