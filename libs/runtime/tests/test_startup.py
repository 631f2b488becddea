"""Start-up waits for NATS within STARTUP_TIMEOUT_S instead of exiting at the first timeout."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from nats.js.api import KeyValueConfig
from switchboard_contracts.topology import GATEWAY
from switchboard_devstack.embedded import NatsAuth, NatsCluster, NatsServer, free_port
from switchboard_devstack.waiting import eventually
from switchboard_runtime import Service, ServiceSettings
from switchboard_runtime.startup import StartupRefused, StartupTimeout

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration

# A service with no consumers of its own: start-up is connect, declare, hooks.
SERVICE = "from switchboard_runtime import Service, ServiceSettings; Service(ServiceSettings(" \
          "service_name='patient')).run()"


async def test_start_waits_for_jetstream_quorum_then_declares_streams_and_buckets(
    nats_cluster: NatsCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SB_STREAM_DEFAULT_REPLICAS", "3")
    survivor, *others = nats_cluster.nodes
    for node in others:  # no meta leader, no quorum: JetStream cannot create anything
        node.stop()
    service = Service(ServiceSettings(service_name="patient", nats_url=nats_cluster.url,
                                      http_port=0, startup_timeout_s=90), owns=(GATEWAY,))

    @service.on_start
    async def open_bucket(svc: Service) -> None:  # as a library does, from its own context
        await svc.nc.jetstream().create_key_value(KeyValueConfig(bucket="patient", replicas=3))

    began = time.monotonic()
    starting = asyncio.create_task(service.start())
    try:
        await eventually(lambda: starting.done() or
                         (service.waiting_on or "").startswith("STREAM."),
                         timeout_s=30, what="start-up waiting on a stream")
        assert not starting.done(), starting.exception()  # it gave up at the first refusal
        readiness = await service.readiness()
        assert readiness["service"].startswith("starting: waiting on STREAM."), readiness
        # Past "no peers to place it on" until the survivor has lost its meta leader too:
        # then JetStream answers "temporarily unavailable", or nothing at all.
        await eventually(lambda: not survivor.monitor("/jsz").get("meta_cluster", {})
                         .get("leader"), timeout_s=60, what="no meta leader")
        assert not starting.done()
        unavailable_s = time.monotonic() - began
        for node in others:
            await asyncio.to_thread(node.start)
        await asyncio.wait_for(starting, 90)
        waited_s = time.monotonic() - began
        assert service.ready
        assert (await service.readiness())["service"] == "ok"
        stream = await service.js.stream_info(GATEWAY.name)
        assert stream.config.num_replicas == 3
        bucket = await service.js.stream_info("KV_patient")
        assert bucket.config.num_replicas == 3
        print(f"start-up waited {waited_s:.1f} s, {unavailable_s:.1f} s of it before the "
              f"nodes came back; last waited on {readiness['service']!r}")
    finally:
        if not starting.done():
            starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await service.stop()


async def test_start_gives_up_after_its_budget_saying_what_it_waited_on() -> None:
    service = Service(ServiceSettings(service_name="impatient", http_port=0,
                                      nats_url=f"nats://127.0.0.1:{free_port()}",
                                      startup_timeout_s=1.0))
    began = time.monotonic()
    with pytest.raises(StartupTimeout, match=r"STARTUP_TIMEOUT_S \(1 s\).*waiting on NATS"):
        await service.start()
    assert 1.0 <= time.monotonic() - began < 5
    assert not service.ready


async def test_a_request_the_services_nats_user_may_not_make_fails_at_once() -> None:
    auth = NatsAuth.generate()
    server = NatsServer(auth=auth).start()
    try:
        # The agent's user may create the agent's streams, not the gateway's.
        service = Service(ServiceSettings(
            service_name="agent", nats_url=server.url, nats_user="agent",
            nats_password=auth.passwords["agent"], http_port=0, startup_timeout_s=60,
        ), owns=(GATEWAY,))
        began = time.monotonic()
        with pytest.raises(StartupRefused, match=r"(?i)permissions violation.*STREAM\.INFO"):
            await service.start()
        assert time.monotonic() - began < 15  # one request's timeout, not the budget
    finally:
        server.cleanup()


def _readyz(port: int) -> tuple[int, dict[str, str]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:  # not serving yet
        return None


async def test_a_service_started_before_nats_is_not_ready_then_ready_without_exiting() -> None:
    nats_port, http_port = free_port(), free_port()
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{nats_port}",
           "HTTP_PORT": str(http_port), "STARTUP_TIMEOUT_S": "120"}
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], env=env,
                            stderr=subprocess.PIPE, text=True)
    server = NatsServer(port=nats_port)
    try:
        # Serving health while it waits: alive, not ready, saying on what.
        status, body = await eventually(lambda: _readyz(http_port), timeout_s=60,
                                        what="/readyz answering")
        assert (status, body["service"]) == (503, "starting: waiting on NATS"), body
        await asyncio.to_thread(server.start)
        await eventually(lambda: (_readyz(http_port) or (0, {}))[0] == 200, timeout_s=60,
                         what="/readyz ready")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.cleanup()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    waits = [json.loads(line) for line in stderr.splitlines()
             if '"start-up waiting"' in line]
    # One line per doubling of the failed attempts, not one per attempt.
    assert waits and [w["attempt"] for w in waits] == [2 ** i for i in range(len(waits))]


async def test_sigterm_while_waiting_for_nats_stops_at_once() -> None:
    http_port = free_port()
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{free_port()}",
           "HTTP_PORT": str(http_port), "STARTUP_TIMEOUT_S": "120"}
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        await eventually(lambda: _readyz(http_port), timeout_s=60, what="/readyz answering")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)  # not the 120 s budget
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert '"stopped during start-up"' in stderr


async def test_run_exits_1_with_one_clear_line_when_the_budget_runs_out() -> None:
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{free_port()}",
           "HTTP_PORT": str(free_port()), "STARTUP_TIMEOUT_S": "1"}
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", SERVICE], env=env,
                                     capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = json.loads(result.stderr.splitlines()[-1])
    assert last["event"] == "start-up gave up"
    assert "STARTUP_TIMEOUT_S (1 s): still waiting on NATS" in last["reason"]
