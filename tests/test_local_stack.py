"""`make run`'s stack, as a person uses it: start it, chat through the simulator, stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats
from switchboard_contracts import Envelope

BIN = Path(sys.executable).parent


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
        msg = await nc.jetstream().get_last_msg("GATEWAY", "gateway.InboundMessageReceived")
        await nc.close()
        event = Envelope.from_bytes(msg.data or b"")
        assert event.tenant_id == "demo"
        assert event.data["body"] == "Is the clinic open?"
    finally:
        stack.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(stack.communicate, timeout=60)
    assert stack.returncode == 0, output
    assert "Stopped." in output
    leftovers = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left behind"
