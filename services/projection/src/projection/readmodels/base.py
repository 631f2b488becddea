"""What every read-model module shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchboard_contracts import Envelope

from ..writes import Writes

# (envelope, typed payload, subject, writes): adds the rows the event means.
Applier = Callable[[Envelope, Any, str, Writes], None]
# (envelope, typed payload, the event's stream sequence, writes): for state that is the
# latest of several events, ordered by the stream (a conversation's mode, its opt-out).
SequencedApplier = Callable[[Envelope, Any, int, Writes], None]


def subject_key(subject: str) -> str:
    """The aggregate id in ``<service>.<id>.<Type>`` (a conversation, a reply)."""
    parts = subject.split(".")
    return parts[1] if len(parts) >= 3 else ""
