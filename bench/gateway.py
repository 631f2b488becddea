"""Webhook throughput and latency: the gateway against a bare FastAPI endpoint.

Both run as their own uvicorn process (uvloop + httptools, one worker, no access log) on this
machine, driven by the same load generator. Every gateway request is a distinct, correctly
signed Twilio webhook for a real tenant, so each one is parsed, checked, signature-verified,
stored in JetStream (PubAck awaited) and traced (exported over OTLP to a local sink). The bare
endpoint parses the same form with request.form() and returns the same TwiML.

Besides the rates, each closed-loop round reads both server processes' CPU time (user +
system, from /proc) per request: on a shared machine the rates swing with the load, the CPU
per request much less.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import nats
from switchboard_devstack.embedded import NatsServer, free_port, wait_for_port
from switchboard_tenants import DirectoryPublisher, TenantRecord, TokenCipher, generate_key
from switchboard_tenants.kv import open_bucket
from twilio.request_validator import RequestValidator

from . import otlp_sink
from .common import Result, median
from .loadgen import Run, closed_loop, open_loop, post_request

ACCOUNT, TOKEN, NUMBER = "AC" + "a" * 32, "f" * 32, "whatsapp:+14155550100"
PATH = "/twilio/whatsapp/inbound"
REQUESTS, CONNECTIONS, ROUNDS = 4000, 32, 2
# Distinct WhatsApp senders the webhooks cycle through: each one is a key of the per-sender
# limit, synced across replicas once per sync interval while it is active (ADR 0015), so the
# mix sets the limits' background traffic. 1,000 (the default) is a busy number's many users.
SENDERS = int(os.environ.get("BENCH_GATEWAY_SENDERS", "1000"))
BIN = Path(sys.executable).parent


def _requests(port: int, count: int) -> list[bytes]:
    validator = RequestValidator(TOKEN)
    url = f"http://127.0.0.1:{port}{PATH}"
    built = []
    for i in range(count):
        message = "SM" + uuid.uuid4().hex
        params = {"MessageSid": message, "SmsMessageSid": message, "AccountSid": ACCOUNT,
                  "From": f"whatsapp:+4477009{i % SENDERS:05d}", "To": NUMBER,
                  "Body": "Hello! Is the clinic open tomorrow morning?", "NumMedia": "0",
                  "NumSegments": "1", "WaId": f"4477009{i % SENDERS:05d}", "ProfileName": "Ada",
                  "MessageType": "text", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(url, params)}
        built.append(post_request(PATH, urlencode(params).encode(), headers))
    return built


async def _publish_tenant(nats_url: str, key: str) -> None:
    nc = await nats.connect(nats_url)
    now = datetime.now(UTC)
    record = TenantRecord(
        tenant_id="bench", name="bench", account_sid=ACCOUNT,
        auth_token_encrypted=TokenCipher([key]).encrypt(TOKEN), system_prompt="-",
        model="-", language="en", numbers=(NUMBER,), created_at=now, updated_at=now,
    )
    await DirectoryPublisher(await open_bucket(nc.jetstream())).publish(record)
    await nc.close()


def _start(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, timeout_s=60)
    return proc


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measured(proc: subprocess.Popen[bytes], port: int, count: int,
                    cpu_us: list[float], nats: NatsServer | None = None,
                    nats_msgs: list[float] | None = None) -> Run:
    """A closed-loop round; appends the server's CPU microseconds per request to cpu_us and,
    given the NATS server, the messages it received per request to nats_msgs."""
    requests = _requests(port, count)
    before, msgs_before = _cpu_s(proc.pid), _nats_in_msgs(nats)
    run = await closed_loop(port, requests, CONNECTIONS)
    cpu_us.append((_cpu_s(proc.pid) - before) / count * 1e6)
    if nats_msgs is not None:
        nats_msgs.append((_nats_in_msgs(nats) - msgs_before) / count)
    return run


def _nats_in_msgs(nats: NatsServer | None) -> int:
    """Messages the NATS server has received from its clients so far (its /varz)."""
    return int(nats.monitor("/varz")["in_msgs"]) if nats is not None else 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


async def main() -> Result:
    load_at_start = os.getloadavg()[0]
    sync_always = os.environ.get("BENCH_NATS_SYNC", "always") == "always"
    server = NatsServer(sync_always=sync_always).start()
    sink_port = free_port()
    sink, spans = otlp_sink.start(sink_port)
    key = generate_key()
    gw_port, bare_port = free_port(), free_port()
    await _publish_tenant(server.url, key)
    env = {**os.environ, "NATS_URL": server.url, "HTTP_PORT": str(gw_port),
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{gw_port}", "SB_TENANT_KEYS": key,
           "IP_RATE_LIMIT": "1000000/second", "SENDER_RATE_LIMIT": "1000000/minute",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
           "LOG_LEVEL": "WARNING"}
    gateway = _start([str(BIN / "switchboard-gateway")], env, gw_port)
    bare = _start([str(BIN / "uvicorn"), "bench.bare_app:app", "--port", str(bare_port),
                   "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                   "--log-level", "warning"], dict(os.environ), bare_port)
    ours_runs: list[Run] = []
    bare_runs: list[Run] = []
    ours_cpu: list[float] = []
    bare_cpu: list[float] = []
    ours_msgs: list[float] = []
    try:
        await closed_loop(gw_port, _requests(gw_port, 300), 8)  # warm-up
        await closed_loop(bare_port, _requests(bare_port, 300), 8)
        for r in range(ROUNDS):
            bare_runs.append(await _measured(bare, bare_port, REQUESTS, bare_cpu))
            ours_runs.append(await _measured(gateway, gw_port, REQUESTS, ours_cpu, server,
                                             ours_msgs))
            print(f"round {r + 1}: bare {bare_runs[-1].rate:.0f}/s ({bare_cpu[-1]:.0f} us CPU/req)"
                  f"  gateway {ours_runs[-1].rate:.0f}/s ({ours_cpu[-1]:.0f} us CPU/req,"
                  f" {ours_msgs[-1]:.2f} NATS msgs/req)  statuses {ours_runs[-1].statuses}")
        half = median([run.rate for run in bare_runs]) / 2
        paced = await open_loop(gw_port, _requests(gw_port, int(half * 8)), half, 64)
        paced_bare = await open_loop(bare_port, _requests(bare_port, int(half * 8)), half, 64)
    finally:
        _stop(gateway)
        _stop(bare)
        sink.stop(0)
        server.cleanup()
    assert all(set(run.statuses) == {200} for run in ours_runs), "gateway refused requests"
    ours_rate = median([run.rate for run in ours_runs])
    bare_rate = median([run.rate for run in bare_runs])
    return Result(
        name="gateway",
        metric="signed webhooks/s answered 200 (closed loop, median of rounds)",
        ours=ours_rate,
        baseline=bare_rate,
        goal=">= 0.60 of the bare rate; p99 < 20 ms at half the bare rate",
        conditions={"requests_per_round": REQUESTS, "connections": CONNECTIONS,
                    "distinct senders": SENDERS,
                    "rounds": ROUNDS, "server": "uvicorn, uvloop + httptools, 1 process each",
                    "nats": "nats-server 2.15.1 single node, sync_interval "
                            + ("always" if sync_always else "default (2 min)"),
                    "tracing": "on, exported over OTLP/gRPC to a local sink",
                    "load generator": "bench/loadgen.py in the benchmark process"},
        extra={
            "gateway p50/p99 ms (closed loop)":
                f"{ours_runs[-1].percentile(50):.1f} / {ours_runs[-1].percentile(99):.1f}",
            "bare p50/p99 ms (closed loop)":
                f"{bare_runs[-1].percentile(50):.1f} / {bare_runs[-1].percentile(99):.1f}",
            "half bare rate (req/s)": round(half),
            "gateway p50/p99 ms at half the bare rate":
                f"{paced.percentile(50):.1f} / {paced.percentile(99):.1f}",
            "bare p50/p99 ms at the same rate":
                f"{paced_bare.percentile(50):.1f} / {paced_bare.percentile(99):.1f}",
            "gateway statuses at half rate": paced.statuses,
            "spans exported": spans.spans,
            "server CPU us per request bare / gateway (median)":
                f"{median(bare_cpu):.0f} / {median(ours_cpu):.0f}",
            "cpu ratio bare/gateway": round(median(bare_cpu) / median(ours_cpu), 3),
            # The publish, the stored-sids note and the limits' syncs (PubAcks not counted).
            "NATS messages received per webhook (median)": round(median(ours_msgs), 2),
            "load average at the start / end": f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}",
        },
    )
