from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from twilio.rest import Client
from twilio_sim.chat import speech
from twilio_sim.chat.cli import app
from twilio_sim.testing import RunningSimulator
from typer.testing import CliRunner

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration

runner = CliRunner()


def chat(sim: RunningSimulator, ids, *args: str) -> list[str]:
    return ["send", *args, "--sim-url", sim.url, "--from", ids.user, "--to", ids.business]


@pytest.fixture
def echo_bot(receiver, twilio: Client) -> None:
    """The stack in miniature: answer every webhook through the Messages API, in two parts."""

    def reply(params: dict[str, str]) -> None:
        said = params["Body"] or f"a {params['MessageType']} note ({params['MediaContentType0']})"
        for part in (f"echo: {said}", "anything else?"):
            twilio.messages.create(to=params["From"], from_=params["To"], body=part)

    receiver.on_webhook = reply


def test_send_prints_the_reply(ids, sim: RunningSimulator, echo_bot) -> None:
    result = runner.invoke(app, chat(sim, ids, "--text", "hello", "--timeout", "10"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["echo: hello", "anything else?"]


def test_send_reads_its_defaults_from_the_environment(
    ids, sim: RunningSimulator, echo_bot
) -> None:
    env = {"SB_SIM_URL": sim.url, "SB_CHAT_FROM": ids.user, "SB_CHAT_TO": ids.business}
    result = runner.invoke(app, ["send", "--text", "from env"], env=env)
    assert result.exit_code == 0, result.output
    assert "echo: from env" in result.stdout


def test_send_exits_non_zero_when_no_reply_comes(ids, sim: RunningSimulator) -> None:
    result = runner.invoke(app, chat(sim, ids, "--text", "anyone?", "--timeout", "0.5"))
    assert result.exit_code == 1
    assert "no reply within 0.5s" in result.stderr


def test_send_reports_a_refused_webhook(ids, receiver, sim: RunningSimulator) -> None:
    receiver.status = 500
    result = runner.invoke(app, chat(sim, ids, "--text", "hi", "--timeout", "0.5"))
    assert result.exit_code == 3
    assert "did not accept" in result.stderr


def test_send_voice_file(ids, receiver, sim: RunningSimulator, echo_bot,
                         tmp_path: Path) -> None:
    note = tmp_path / "note.ogg"
    note.write_bytes(b"OggS not really opus")
    result = runner.invoke(app, chat(sim, ids, "--voice", str(note), "--timeout", "10"))
    assert result.exit_code == 0, result.output
    assert "echo: a audio note (audio/ogg)" in result.stdout
    [webhook] = receiver.at("/webhook")
    media = httpx.get(webhook.params["MediaUrl0"], auth=(ids.account, ids.token),
                      follow_redirects=True)
    assert media.content == b"OggS not really opus"


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("opusenc")),
                    reason="needs espeak-ng and opusenc (apt-get install espeak-ng opus-tools)")
def test_send_say_speaks_an_ogg_opus_voice_note(
    ids, receiver, sim: RunningSimulator, echo_bot
) -> None:
    result = runner.invoke(app, chat(sim, ids, "--say", "hello there", "--timeout", "10"))
    assert result.exit_code == 0, result.output
    [webhook] = receiver.at("/webhook")
    assert webhook.params["MessageType"] == "audio"
    media = httpx.get(webhook.params["MediaUrl0"], auth=(ids.account, ids.token),
                      follow_redirects=True)
    assert media.content[:4] == b"OggS" and b"OpusHead" in media.content[:100]


def test_say_names_the_missing_tool(ids, sim: RunningSimulator,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech, "_find", lambda tool: None)
    result = runner.invoke(app, chat(sim, ids, "--say", "hello", "--timeout", "0.5"))
    assert result.exit_code == 2
    assert "espeak-ng" in result.stderr and "apt-get install espeak-ng" in result.stderr


def test_send_wants_exactly_one_message(ids, sim: RunningSimulator) -> None:
    result = runner.invoke(app, chat(sim, ids, "--text", "a", "--say", "b"))
    assert result.exit_code == 2
