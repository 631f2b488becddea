"""A service whose handler takes seconds: started by test_shutdown in its own process."""

import asyncio
import os
from pathlib import Path

from switchboard_contracts.topology import GATEWAY
from switchboard_runtime import Service, ServiceSettings
from switchboard_runtime.bus import ConsumerSpec

marker = Path(os.environ["MARKER"])


async def slow(event) -> None:
    with marker.open("a") as out:
        out.write(f"started {event.envelope.event_id}\n")
    await asyncio.sleep(3)
    with marker.open("a") as out:
        out.write(f"finished {event.envelope.event_id}\n")


service = Service(ServiceSettings(service_name="slow"), owns=(GATEWAY,))
service.consume(
    ConsumerSpec(durable="slow", stream=GATEWAY.name, filter_subjects=("gateway.>",),
                 ack_wait_s=10, batch=1),
    {"InboundMessageReceived": slow},
)
service.run()
