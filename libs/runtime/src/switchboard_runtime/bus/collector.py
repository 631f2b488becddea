"""Files MAX_DELIVERIES advisories for a service's consumers as dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from switchboard_contracts.topology import ADVISORIES

from .consumer import Consumer, ConsumerSpec
from .deadletters import advisory_subject, file_max_deliveries_advisory


class AdvisoryCollector(Consumer):
    """A durable consumer on the ADVISORIES stream, filtered to the watched consumers."""

    takes_replays = False  # it files dead letters; none of its own to replay

    def __init__(self, js: JetStreamContext, service: str, watched: Sequence[ConsumerSpec]) -> None:
        spec = ConsumerSpec(
            durable=f"{service}-deadletters",
            stream=ADVISORIES.name,
            filter_subjects=tuple(advisory_subject(c.stream, c.durable) for c in watched),
            ack_wait_s=30.0,
            max_deliver=10,
        )
        super().__init__(js, spec, handlers={})

    async def _process(self, msg: Msg) -> None:
        try:
            await file_max_deliveries_advisory(self._js, msg)
        except Exception:
            await msg.nak(delay=self.spec.retry_delay(msg.metadata.num_delivered))
            raise
        await msg.ack()
