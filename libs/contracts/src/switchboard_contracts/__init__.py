"""Switchboard event contracts: envelope, typed payloads, registry and stream topology."""

from . import events, topology
from .envelope import Envelope, EventData
from .registry import Event, Registry, UnknownEventType, UnsupportedVersion, registry

__all__ = [
    "Envelope",
    "Event",
    "EventData",
    "Registry",
    "UnknownEventType",
    "UnsupportedVersion",
    "events",
    "registry",
    "topology",
]
