"""A bounded memory of what this process has already done, for cheap duplicate skips.

Redeliveries usually land on the replica that handled the first delivery; remembering the
last few thousand keys skips them without a round trip. It is an optimisation only: the
stream's ``Nats-Msg-Id`` and the handlers' own checks keep duplicates out across replicas.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RecentKeys(Generic[K]):
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[K, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: K) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
