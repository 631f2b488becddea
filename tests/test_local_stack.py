"""`make run`'s stack, as a person uses it: start it, chat (a text and a voice note) through
the simulator, read the conversation back from the read API, trace a message, stop it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats
from switchboard_contracts import Envelope

BIN = Path(sys.executable).parent
SPEECH_TOOLS = shutil.which("espeak-ng") and shutil.which("opusenc")


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


async def test_the_local_stack_answers_a_chat_message_and_stops_cleanly(tmp_path) -> None:
    state = tmp_path / "run"
    stack = subprocess.Popen([str(BIN / "switchboard-dev"), "run", "--state", str(state)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):
            if (state / "stack.env").exists() or stack.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert (state / "stack.env").exists(), stack.stdout.read() if stack.stdout else ""
        settings = _env_file(state / "stack.env")
        chat = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "switchboard-chat"), "send", "--text", "Is the clinic open?",
             "--timeout", "30"],
            env={**os.environ, **settings}, capture_output=True, text=True, timeout=60,
        )
        assert chat.returncode == 0, chat.stdout + chat.stderr
        assert "[local development responder]" in chat.stdout
        nc = await nats.connect(settings["NATS_URL"])
        msg = await nc.jetstream().get_last_msg("GATEWAY", "gateway.*.InboundMessageReceived")
        await nc.close()
        event = Envelope.from_bytes(msg.data or b"")
        assert event.tenant_id == "demo"
        assert event.data["body"] == "Is the clinic open?"
        if SPEECH_TOOLS:
            voice = await asyncio.to_thread(
                subprocess.run,
                [str(BIN / "switchboard-chat"), "send", "--say",
                 "Please book an appointment for tomorrow morning", "--timeout", "60"],
                env={**os.environ, **settings}, capture_output=True, text=True, timeout=90,
            )
            assert voice.returncode == 0, voice.stdout + voice.stderr
            assert "appointment" in voice.stdout.lower()  # the dev responder echoes the transcript
        await _check_read_api(settings, voice_note=bool(SPEECH_TOOLS))
    finally:
        stack.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(stack.communicate, timeout=60)
    assert stack.returncode == 0, output
    assert "Stopped." in output
    leftovers = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left behind"


async def _check_read_api(settings: dict[str, str], *, voice_note: bool) -> None:
    """The projection has the conversation; the demo key reads it; no key, no data."""
    api = settings["SB_READ_API_URL"]
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        assert (await client.get("/v1/conversations")).status_code == 401
        headers = {"X-API-Key": settings["SB_API_KEY"]}
        expected = 4 if voice_note else 2  # each inbound message and its reply
        messages: list[dict[str, object]] = []
        for _ in range(100):  # the projection follows the streams asynchronously
            listed = (await client.get("/v1/conversations", headers=headers)).json()["items"]
            if listed:
                conversation = listed[0]["conversation_id"]
                messages = (await client.get(f"/v1/conversations/{conversation}/messages",
                                             headers=headers)).json()["items"]
                if len(messages) >= expected:
                    break
            await asyncio.sleep(0.2)
        assert len(messages) == expected, messages
        # make run's demo operator: an operator key (a reader key's command is a 403; this
        # one reaches the lookup of a conversation that does not exist), and the inbox page.
        operator = {"X-API-Key": settings["SWITCHBOARD_OPERATOR_KEY"]}
        assert settings["SWITCHBOARD_OPERATOR_URL"] == api
        assert (await client.get("/v1/operator/queue", headers=operator)).status_code == 200
        claim = f"/v1/operator/conversations/cv{'0' * 32}/claim"
        assert (await client.post(claim, headers=operator)).status_code == 404
        assert "Switchboard inbox" in (await client.get("/inbox/")).text
    if voice_note:
        transcribed = [m for m in messages if m.get("transcription")]
        assert "appointment" in str(transcribed[0]["transcription"]).lower()
    trace = await asyncio.to_thread(
        subprocess.run, [str(BIN / "switchboard-trace"), str(messages[0]["correlation_id"])],
        env={**os.environ, **settings, "COLUMNS": "160"}, capture_output=True, text=True,
        timeout=30,
    )
    assert trace.returncode == 0, trace.stdout + trace.stderr
    assert "gateway" in trace.stdout and "sender" in trace.stdout
