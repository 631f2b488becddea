"""No service's log carries a phone number (in any encoding), a message body or a secret, after
an end-to-end run of the local stack: a text message whose reply's first send is ambiguous
(the simulator hangs past the sender's Twilio timeout), so the sender looks it up through the
Twilio SDK, whose request lines carry the numbers URL-encoded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from switchboard_devstack.waiting import eventually
from twilio_sim.client import SimClient

BIN = Path(sys.executable).parent
SERVICES = ("gateway", "conversation", "agent", "sender", "transcription", "projection")
BODY = "Could you move my root canal appointment to Thursday afternoon"
LOOKED_UP = "an ambiguous send had gone through"


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _forbidden(settings: dict[str, str]) -> dict[str, str]:
    """What must appear in no log, by the name a failure shows."""
    found: dict[str, str] = {}
    for role in ("SB_CHAT_FROM", "SB_CHAT_TO"):
        number = settings[role].removeprefix("whatsapp:")
        once, twice = quote(number, safe=""), quote(quote(number, safe=""), safe="")
        found |= {f"{role} raw": number, f"{role} URL-encoded": once,
                  f"{role} double-encoded": twice, f"{role} lower-case encoded": once.lower(),
                  # The digits alone: also every form above, and any other encoding of the +.
                  f"{role} without +": number.removeprefix("+")}
    found |= {"message body": BODY, "tenant auth token": settings["SB_AUTH_TOKEN"],
              "tenant encryption key": settings["SB_TENANT_KEYS"],
              "read-API key": settings["SB_API_KEY"]}
    return found


async def test_no_service_log_carries_a_number_a_body_or_a_secret(tmp_path) -> None:
    state = tmp_path / "run"
    # A short Twilio timeout, so the hung send becomes ambiguous (and is looked up) quickly.
    env = {**os.environ, "TWILIO_TIMEOUT_S": "2"}
    stack = subprocess.Popen([str(BIN / "switchboard-dev"), "run", "--state", str(state)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env)
    logs = state / "logs"
    try:
        await eventually(lambda: (state / "stack.env").exists() or stack.poll() is not None,
                         120, interval_s=0.2, what="the stack")
        assert (state / "stack.env").exists(), stack.stdout.read() if stack.stdout else ""
        settings = _env_file(state / "stack.env")
        async with SimClient(settings["SB_SIM_URL"]) as sim:
            # The reply's create hangs past TWILIO_TIMEOUT_S, yet the message is created.
            await sim.queue_failure("timeout", hang_s=5.0)
        chat = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "switchboard-chat"), "send", "--text", BODY, "--timeout", "60"],
            env={**os.environ, **settings}, capture_output=True, text=True, timeout=90,
        )
        assert chat.returncode == 0, chat.stdout + chat.stderr
        await eventually(lambda: LOOKED_UP in (logs / "sender.log").read_text(), 60,
                         interval_s=0.2, what="the sender's lookup of the ambiguous send")
    finally:
        stack.send_signal(signal.SIGINT)
        await asyncio.to_thread(stack.communicate, timeout=90)

    leaks = []
    for service in SERVICES:
        text = (logs / f"{service}.log").read_text()
        assert text.strip(), f"{service} wrote no log"
        for line in text.splitlines():
            leaks += [f"{service}.log ({what}): {line[:300]}"
                      for what, secret in _forbidden(settings).items() if secret in line]
    assert not leaks, "\n".join(leaks)
