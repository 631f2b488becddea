"""Typed wiring of handlers to event types: the payload type decides the subscription.

``Consumer`` dispatches on the type name in the envelope, so its mapping is keyed by strings
and its handlers take ``Event[Any]``: a handler registered under the wrong name would only
fail at run time, on its first event. ``Handlers().on(InboundMessageReceived, on_inbound)``
takes the model class instead of its name and requires a handler of
``Event[InboundMessageReceived]`` (or of a union that includes it), so mypy refuses a mismatch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TypeVar

from switchboard_contracts import Event, EventData

from .consumer import Handler

T = TypeVar("T", bound=EventData)


class Handlers(Mapping[str, Handler]):
    """An immutable map from event type name to handler, what ``Service.consume`` takes."""

    def __init__(self, by_type: Mapping[str, Handler] | None = None) -> None:
        self._by_type = dict(by_type or {})

    def on(self, event: type[T], handler: Callable[[Event[T]], Awaitable[None]]) -> Handlers:
        """These handlers plus ``handler`` for ``event``; one handler per type."""
        if event.TYPE in self._by_type:
            raise ValueError(f"a handler for {event.TYPE} is already registered")
        return Handlers({**self._by_type, event.TYPE: handler})

    def __getitem__(self, type_name: str) -> Handler:
        return self._by_type[type_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)
