"""faster-whisper with the real Whisper base model."""

from __future__ import annotations

import numpy as np
import pytest
from transcription.engine import (
    EngineOptions,
    WhisperEngine,
    choose_language,
    load_engine,
    load_model,
)
from transcription.failures import TranscriptionFailure
from transcription.main import model_spec
from transcription.settings import TranscriptionSettings
from transcription_helpers import KEY_WORDS, encode, wav_samples

# The real model and espeak-ng: seconds per test, not a unit.
pytestmark = pytest.mark.integration

SUPPORTED = frozenset({"en", "es", "pt", "de"})


def test_a_spoken_sentence_is_transcribed(engine: WhisperEngine, voice_note: bytes) -> None:
    transcript = engine.transcribe_bytes(voice_note, hint="en")
    assert all(word in transcript.text.lower() for word in KEY_WORDS), transcript.text
    assert transcript.language == "en"
    assert transcript.audio_duration_s == pytest.approx(3.54, abs=0.1)
    assert 0 < transcript.processing_s < 30
    assert engine.name == "whisper-base"


def test_a_narrowband_amr_note_is_transcribed(engine: WhisperEngine, spoken_wav: bytes) -> None:
    pcm, rate = wav_samples(spoken_wav)
    amr = encode(pcm, rate, "amr", "libopencore_amrnb", 8000)
    transcript = engine.transcribe_bytes(amr, hint=None)
    assert all(word in transcript.text.lower() for word in KEY_WORDS), transcript.text


def test_silence_is_no_speech(engine: WhisperEngine) -> None:
    with pytest.raises(TranscriptionFailure) as failed:
        engine.transcribe(np.zeros(16_000 * 3, dtype=np.float32), hint="en")
    assert failed.value.reason == "no_speech"


def test_the_model_is_loaded_once_per_process(engine: WhisperEngine) -> None:
    spec = model_spec(TranscriptionSettings())
    assert load_model(spec)[0] is engine.model
    assert load_engine(spec, EngineOptions(beam_size=1)).model is engine.model


@pytest.mark.parametrize(("detected", "probability", "hint", "chosen"), [
    ("en", 0.9, "es", "en"),     # Whisper is sure: what was said wins over the tenant's
    ("pt", 0.3, "es", "es"),     # unsure: the tenant's language
    ("pt", 0.3, "es-MX", "es"),  # a regional tenant language is its base language
    ("pt", 0.3, None, "pt"),     # no hint: Whisper's best guess
    ("pt", 0.3, "tlh", "pt"),    # a hint Whisper does not know is ignored
    ("es", 0.5, "de", "es"),     # at the threshold Whisper is sure enough
])
def test_the_tenants_language_is_a_hint_for_unsure_detections(
        detected: str, probability: float, hint: str | None, chosen: str) -> None:
    assert choose_language(detected, probability, hint, 0.5, SUPPORTED) == chosen
