"""Decoding what WhatsApp sends: OGG/Opus voice notes, and AMR, 3GP, MP3, M4A/AAC files."""

from __future__ import annotations

import os

import pytest
from transcription.audio import SAMPLE_RATE, audio_type_allowed, decode
from transcription.failures import TranscriptionFailure
from transcription_helpers import encode, wav_samples

SPOKEN_S = 3.54  # the espeak-ng sentence's duration

FORMATS = {  # name: (container, codec, sample rate)
    "amr": ("amr", "libopencore_amrnb", 8000),
    "3gp": ("3gp", "libopencore_amrnb", 8000),
    "mp3": ("mp3", "libmp3lame", 22050),
    "m4a": ("ipod", "aac", 22050),
}


def test_a_voice_note_decodes_to_16khz_mono(voice_note: bytes) -> None:
    samples = decode(voice_note, max_seconds=60)
    assert samples.dtype.name == "float32" and samples.ndim == 1
    assert samples.size / SAMPLE_RATE == pytest.approx(SPOKEN_S, abs=0.1)
    assert 0.05 < abs(samples).max() <= 1.0


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_other_whatsapp_audio_formats_decode(spoken_wav: bytes, name: str) -> None:
    container, codec, rate = FORMATS[name]
    pcm, wav_rate = wav_samples(spoken_wav)
    samples = decode(encode(pcm, wav_rate, container, codec, rate), max_seconds=60)
    assert samples.size / SAMPLE_RATE == pytest.approx(SPOKEN_S, abs=0.1)


@pytest.mark.parametrize("data", [os.urandom(20_000), b"", b"<html>not audio</html>"],
                         ids=["random", "empty", "html"])
def test_corrupted_audio_is_undecodable(data: bytes) -> None:
    with pytest.raises(TranscriptionFailure) as failed:
        decode(data, max_seconds=60)
    assert failed.value.reason == "audio_undecodable"


def test_decoding_stops_at_the_duration_cap(voice_note: bytes) -> None:
    with pytest.raises(TranscriptionFailure) as failed:
        decode(voice_note, max_seconds=1.0)
    assert failed.value.reason == "audio_too_long"


@pytest.mark.parametrize(("content_type", "allowed"), [
    ("audio/ogg", True), ("audio/ogg; codecs=opus", True), ("AUDIO/OGG", True),
    ("audio/amr", True), ("audio/mpeg", True), ("audio/mp4", True), ("audio/aac", True),
    ("audio/3gpp", True), ("image/jpeg", False), ("text/html", False),
    ("application/pdf", False), ("", False),
])
def test_voice_note_content_types(content_type: str, allowed: bool) -> None:
    assert audio_type_allowed(content_type) is allowed
