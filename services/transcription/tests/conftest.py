from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from nats.js import JetStreamContext
from switchboard_tenants import TokenCipher, generate_key
from transcription.engine import EngineOptions, WhisperEngine, load_engine
from transcription.main import model_spec
from transcription.settings import TranscriptionSettings
from transcription_helpers import (
    ACCOUNT,
    SENTENCE,
    TOKEN,
    MediaHost,
    media_host,
    publish_tenant,
)
from twilio_sim import Account, SimConfig
from twilio_sim.testing import RunningSimulator, run_simulator


def _need_speech_tools() -> None:
    if shutil.which("espeak-ng") is None or not (shutil.which("opusenc")
                                                 or shutil.which("ffmpeg")):
        pytest.skip("voice-note tests need espeak-ng and opusenc (make system-packages)")


@pytest.fixture(scope="session")
def engine() -> WhisperEngine:
    """The real Whisper model, loaded once for the whole test session: services built later
    with the default model settings get this same loaded model (``load_model`` caches it)."""
    return load_engine(model_spec(TranscriptionSettings()), EngineOptions())


@pytest.fixture(scope="session")
def voice_note() -> bytes:
    """An English sentence spoken by espeak-ng, as a WhatsApp voice note (OGG/Opus)."""
    _need_speech_tools()
    from twilio_sim.chat.speech import speak

    return speak(SENTENCE)


@pytest.fixture(scope="session")
def spoken_wav() -> bytes:
    _need_speech_tools()
    return subprocess.run(["espeak-ng", "--stdin", "--stdout"], input=SENTENCE.encode(),
                          check=True, capture_output=True).stdout


@pytest.fixture
def cipher(monkeypatch: pytest.MonkeyPatch) -> TokenCipher:
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    return TokenCipher.from_env()


@pytest.fixture
async def tenant(js: JetStreamContext, cipher: TokenCipher) -> None:
    await publish_tenant(js, cipher)


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    """The Twilio simulator, its media CDN on another host name (``localhost``), which refuses
    requests carrying credentials, as a client must not send them across hosts."""
    with run_simulator(SimConfig(accounts=[Account(sid=ACCOUNT, auth_token=TOKEN)]),
                       cdn_host="localhost") as sim:
        yield sim


@pytest.fixture
def host() -> Iterator[MediaHost]:
    with media_host() as server:
        yield server


@pytest.fixture
def outside() -> Iterator[MediaHost]:
    """A host that is not on the allow-list: nothing may ever reach it."""
    with media_host() as server:
        yield server
