"""From a type name on the wire to its pydantic model, with the major-version rule."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .envelope import Envelope, EventData, major_of

T = TypeVar("T", bound=EventData)


class UnknownEventType(LookupError):
    """No model is registered under this type name."""


class UnsupportedVersion(ValueError):
    """The event's major version is not the one this code understands."""


@dataclass(frozen=True, slots=True)
class Event(Generic[T]):
    """What a handler receives: the envelope and its payload, typed."""

    envelope: Envelope
    data: T


class Registry:
    def __init__(self) -> None:
        self._models: dict[str, type[EventData]] = {}

    def register(self, model: type[T]) -> type[T]:
        existing = self._models.get(model.TYPE)
        if existing is not None and existing is not model:
            raise ValueError(f"event type {model.TYPE!r} registered twice")
        self._models[model.TYPE] = model
        return model

    def model_for(self, type_name: str) -> type[EventData]:
        try:
            return self._models[type_name]
        except KeyError:
            raise UnknownEventType(type_name) from None

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._models

    def __iter__(self) -> Iterator[type[EventData]]:
        """The registered models, in the order they were registered."""
        return iter(self._models.values())

    def decode(self, envelope: Envelope) -> Event[EventData]:
        """Type the payload; refuse a major version other than the registered one."""
        model = self.model_for(envelope.type)
        try:
            major = major_of(envelope.version)
        except ValueError as exc:
            raise UnsupportedVersion(str(exc)) from None
        if major != model.major():
            raise UnsupportedVersion(
                f"{envelope.type} major version {major} is not supported "
                f"(this consumer understands {model.major()})"
            )
        return Event(envelope, model.model_validate(envelope.data))


registry = Registry()
"""The process-wide registry; every module under ``events`` registers into it on import."""
