"""``switchboard-trace``: the waterfall, read from a real read API over HTTP."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from projection import trace_cli
from projection_helpers import START, add_tenant, wait_caught_up
from projection_scripts import ConversationScript, publish
from switchboard_devstack.serving import serve_here
from switchboard_runtime import Service
from typer.testing import CliRunner


async def test_trace_draws_each_hop_with_its_latency(projection: Service,
                                                     js: JetStreamContext) -> None:
    assert projection.db is not None
    key = await add_tenant(projection.db, js, "clinic")
    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    sid = talk.voice_note("Where are you", reply="Main street 1.")
    await publish(js, talk.events)
    await wait_caught_up(js)

    runner = CliRunner()
    async with serve_here(projection.app) as url:
        # The CLI is synchronous: it runs on a thread while this loop serves the API.
        drawn = await asyncio.to_thread(runner.invoke, trace_cli.app, [
            sid, "--width", "30"], env={"SB_READ_API_URL": url, "SB_API_KEY": key,
                                        "COLUMNS": "160"})
        refused = await asyncio.to_thread(runner.invoke, trace_cli.app, [
            sid, "--api-url", url, "--api-key", "sbk_wrong"])
        unknown = await asyncio.to_thread(runner.invoke, trace_cli.app, [
            "SMnothing", "--api-url", url, "--api-key", key])

    assert drawn.exit_code == 0, drawn.output
    rows = [line for line in drawn.output.splitlines() if line.startswith("│")]
    for service in ("gateway", "conversation", "transcription", "agent", "sender"):
        assert service in drawn.output
    assert "TranscriptionCompleted" in drawn.output and "40 ms" in drawn.output
    assert len(rows) == len([e for e in talk.events
                             if e.envelope.correlation_id == sid and not e.headers])
    assert "█" in drawn.output
    assert (refused.exit_code, unknown.exit_code) == (2, 1)


def test_a_bar_spans_from_the_previous_hop_to_this_one() -> None:
    assert trace_cli.bar(0, 0, 100, 10) == "█"
    assert trace_cli.bar(0, 50, 100, 10) == "█████"
    assert trace_cli.bar(50, 100, 100, 10) == "     █████"
    assert trace_cli.bar(99, 100, 100, 10) == "         █"
    assert trace_cli.bar(0, 0, 0, 10) == "▏"
