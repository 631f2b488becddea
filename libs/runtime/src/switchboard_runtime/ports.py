"""Handlers built before the service starts, given what they reach outside themselves
(publishers, directories, models) once those exist."""

from __future__ import annotations

from typing import Generic, TypeVar

P = TypeVar("P")


class NeedsPorts(Generic[P]):
    _ports: P | None = None

    def connect(self, ports: P) -> None:
        self._ports = ports

    @property
    def ports(self) -> P:
        assert self._ports is not None, "handler not connected"
        return self._ports
