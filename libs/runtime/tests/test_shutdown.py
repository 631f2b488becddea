from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from switchboard_contracts.topology import GATEWAY
from switchboard_devstack.embedded import free_port
from switchboard_runtime import Service, ServiceSettings
from switchboard_runtime import service as service_module
from switchboard_runtime.bus import Publisher


async def test_sigterm_lets_the_slow_handler_finish_and_ack_once(
    streams, make_inbound, nats_url, tmp_path
) -> None:
    marker = tmp_path / "marker"
    env = {**os.environ, "NATS_URL": nats_url, "MARKER": str(marker),
           "HTTP_PORT": str(free_port())}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "slow_service.py")],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        event = make_inbound()
        for _ in range(200):  # the service declares its consumer at start-up
            try:
                await streams.consumer_info(GATEWAY.name, "slow")
                break
            except Exception:
                await asyncio.sleep(0.05)
        await Publisher(streams, GATEWAY.name).publish("gateway.InboundMessageReceived", event)
        # SIGTERM while the handler runs (not before it started: on a loaded machine the
        # service can take a while to start fetching).
        deadline = time.monotonic() + 60
        while not (marker.exists() and "started" in marker.read_text()):
            assert time.monotonic() < deadline, "the handler never started"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert marker.read_text().splitlines() == [
        f"started {event.event_id}", f"finished {event.event_id}"
    ]
    info = await streams.consumer_info(GATEWAY.name, "slow")
    assert info.num_ack_pending == 0
    assert info.num_redelivered == 0
    assert info.delivered.consumer_seq == 1
    # Nothing comes back for a new replica bound to the same consumer.
    sub = await streams.pull_subscribe_bind(durable="slow", stream=GATEWAY.name)
    try:
        again = await sub.fetch(1, timeout=1.5)
    except Exception:
        again = []
    assert again == []


async def test_stop_does_not_wait_forever_for_a_connection_never_released(
    nats_url, database_url, monkeypatch
) -> None:
    monkeypatch.setattr(service_module, "POOL_CLOSE_TIMEOUT_S", 0.5)
    service = Service(ServiceSettings(service_name="leaky", nats_url=nats_url,
                                      database_url=database_url, http_port=0))
    await service.start()
    assert service.db is not None
    await service.db.acquire()  # and never released, as a bug would
    started = time.monotonic()
    await asyncio.wait_for(service.stop(), 10)
    assert time.monotonic() - started < 5
