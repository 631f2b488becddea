"""From a status callback to the trace of the message it is about, and from the webhook
latency to its trace (an exemplar in the OpenMetrics scrape)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway_helpers import ACCOUNT, NUMBER, PUBLIC, STATUS_PATH, USER, post, sid, signed
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sender.store import ReplyStore, open_messages_bucket
from switchboard_contracts.topology import SENDER
from switchboard_runtime.bus import Publisher
from switchboard_runtime.telemetry import configure_tracing

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("gateway-test", None).add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def server_span(spans: InMemorySpanExporter, path: str):  # type: ignore[no-untyped-def]
    [span] = [s for s in spans.get_finished_spans() if s.name == f"POST {path}"]
    return span


async def test_a_status_callback_span_links_to_the_trace_of_the_send(client, js, spans) -> None:
    message_sid = sid()
    store = ReplyStore(js, Publisher(js, SENDER.name), await open_messages_bucket(js, 1, None))
    with trace.get_tracer("test").start_as_current_span("process ReplyGenerated") as send:
        await store.remember_sid(message_sid, "r1", 1, "clinic")  # as the sender does
    sent_trace = send.get_span_context().trace_id

    params = {"MessageSid": message_sid, "AccountSid": ACCOUNT, "From": NUMBER, "To": USER,
              "MessageStatus": "delivered"}
    response = await post(client, params, signed(params, url=PUBLIC + STATUS_PATH),
                          path=STATUS_PATH)
    assert response.status_code == 200

    status = server_span(spans, STATUS_PATH)
    assert status.context.trace_id != sent_trace  # Twilio's callback starts a trace of its own
    assert [link.context.trace_id for link in status.links] == [sent_trace]
    assert status.links[0].attributes == {"switchboard.link": "sent message"}


async def test_a_status_for_a_message_not_recorded_has_no_link(client, spans) -> None:
    params = {"MessageSid": sid(), "AccountSid": ACCOUNT, "From": NUMBER, "To": USER,
              "MessageStatus": "sent"}
    response = await post(client, params, signed(params, url=PUBLIC + STATUS_PATH),
                          path=STATUS_PATH)
    assert response.status_code == 200
    assert list(server_span(spans, STATUS_PATH).links) == []


async def test_the_webhook_latency_carries_its_trace_as_an_exemplar(client, spans) -> None:
    params = {"MessageSid": sid(), "AccountSid": ACCOUNT, "From": NUMBER, "To": USER,
              "MessageStatus": "read"}
    response = await post(client, params, signed(params, url=PUBLIC + STATUS_PATH),
                          path=STATUS_PATH)
    assert response.status_code == 200
    trace_id = format(server_span(spans, STATUS_PATH).context.trace_id, "032x")

    scrape = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert scrape.headers["content-type"].startswith("application/openmetrics-text")
    latency = [line for line in scrape.text.splitlines()
               if line.startswith('switchboard_gateway_webhook_seconds_bucket{endpoint="status"')
               and " # " in line]  # an OpenMetrics exemplar follows " # "
    assert any(f'trace_id="{trace_id}"' in line for line in latency), latency
    plain = await client.get("/metrics")  # the text format has no exemplars
    assert plain.headers["content-type"].startswith("text/plain")
    assert trace_id not in plain.text
