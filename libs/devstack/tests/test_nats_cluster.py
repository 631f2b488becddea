"""The embedded 3-node JetStream cluster: R3 streams survive the loss of their leader."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError
from switchboard_contracts.topology import GATEWAY
from switchboard_devstack.embedded import NatsCluster
from switchboard_runtime.bus import ensure_stream
from switchboard_tenants.kv import BUCKET, open_bucket


async def _publish(js: JetStreamContext, subject: str, msg_id: str, timeout_s: float = 30) -> None:
    """Publish until stored: during an election a publish may get no answer, and a retry
    with the same Nats-Msg-Id cannot store it twice."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await js.publish(subject, msg_id.encode(), headers={"Nats-Msg-Id": msg_id},
                             timeout=1)
            return
        except (NatsTimeoutError, NoRespondersError, NoStreamResponseError,
                ServiceUnavailableError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_an_r3_stream_keeps_accepting_and_loses_nothing_when_its_leader_is_killed(
    nats_cluster: NatsCluster,
) -> None:
    nc = await nats.connect(servers=nats_cluster.url.split(","), max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3)
        for i in range(5):
            await _publish(js, "orders.placed", f"before-{i}")
        leader = nats_cluster.leader_of("ORDERS")

        leader.kill()
        for i in range(5):
            await _publish(js, "orders.placed", f"after-{i}")
        assert (await asyncio.to_thread(nats_cluster.leader_of, "ORDERS")) is not leader

        leader.start()
        await asyncio.to_thread(nats_cluster.wait_healthy, 30)
        assert (await js.stream_info("ORDERS")).state.messages == 10
        # The restarted node caught up: its own copy holds every message.
        restarted = nats_cluster.stream_details(leader)["ORDERS"]
        assert restarted["state"]["messages"] == 10
    finally:
        await nc.close()


async def test_the_cluster_stores_a_stream_on_all_three_nodes(nats_cluster: NatsCluster) -> None:
    nc = await nats.connect(servers=nats_cluster.url.split(","))
    try:
        js = nc.jetstream()
        info = await js.add_stream(name="EVENTS", subjects=["events.>"], num_replicas=3)
        assert info.config.num_replicas == 3
        await js.publish("events.one", b"1")
        await asyncio.to_thread(nats_cluster.wait_healthy, 30)
        info = await js.stream_info("EVENTS")
        assert info.cluster is not None and info.cluster.replicas is not None
        members = {info.cluster.leader, *(replica.name for replica in info.cluster.replicas)}
        assert members == {node.name for node in nats_cluster.nodes}
        assert all(replica.current for replica in info.cluster.replicas)
    finally:
        await nc.close()


async def test_the_replica_settings_give_streams_and_kv_buckets_three_replicas(
    nats_cluster: NatsCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SB_STREAM_DEFAULT_REPLICAS", "3")
    monkeypatch.setenv("SB_KV_REPLICAS", "3")
    nc = await nats.connect(servers=nats_cluster.url.split(","))
    try:
        js = nc.jetstream()
        await ensure_stream(js, GATEWAY)
        await open_bucket(js)  # the tenants' directory
        assert (await js.stream_info(GATEWAY.name)).config.num_replicas == 3
        assert (await js.stream_info(f"KV_{BUCKET}")).config.num_replicas == 3
    finally:
        await nc.close()
