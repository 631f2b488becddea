"""faster-whisper behind one small class, loaded once per process.

``WhisperEngine.transcribe`` is blocking (CTranslate2 releases the GIL while it computes) and
is called on the service's transcription threads, at most ``num_workers`` at a time, which
CTranslate2 runs in parallel, each with ``cpu_threads`` threads.

Per voice note: decode (``audio.decode``), then ``WhisperModel.transcribe`` with VAD on and
the language detected, exactly as a direct caller would (the benchmark holds us to that).
The tenant's language is a hint: Whisper's guess wins when it is sure (probability at least
``language_threshold``); when it is not (short notes often are not) and the tenant speaks
another language, the note is transcribed in the tenant's language instead. ``transcribe``
returns its segments lazily, so that second call only repeats the VAD and the detection.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment, TranscriptionInfo

from .audio import Samples, decode
from .failures import NO_SPEECH, TranscriptionFailure
from .model_files import model_dir_from


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str  # what it was transcribed as
    detected_language: str
    detected_probability: float
    audio_duration_s: float
    speech_duration_s: float
    processing_s: float


def base_language(code: str | None) -> str | None:
    """``"pt-BR"`` -> ``"pt"``; None stays None."""
    if not code:
        return None
    return code.replace("_", "-").split("-", 1)[0].lower() or None


def choose_language(detected: str, probability: float, hint: str | None, threshold: float,
                    supported: frozenset[str]) -> str:
    """Whisper's language when it is sure, else the hint (when Whisper knows it)."""
    hinted = base_language(hint)
    if probability >= threshold or hinted is None or hinted not in supported:
        return detected
    return hinted


@dataclass(frozen=True, slots=True)
class EngineOptions:
    beam_size: int = 5
    language_threshold: float = 0.5
    max_audio_s: float = 1800.0


class WhisperEngine:
    def __init__(self, model: WhisperModel, name: str, options: EngineOptions) -> None:
        self.model = model
        self.name = name
        self.options = options
        self._supported = frozenset(model.supported_languages)

    def transcribe_bytes(self, data: bytes, hint: str | None) -> Transcript:
        """Decode and transcribe a voice note (blocking: call it on a worker thread)."""
        started = time.perf_counter()
        audio = decode(data, self.options.max_audio_s)
        return self.transcribe(audio, hint, started)

    def transcribe(self, audio: Samples, hint: str | None,
                   started: float | None = None) -> Transcript:
        started = time.perf_counter() if started is None else started
        segments, info = self._run(audio, None)  # lazy: nothing is decoded yet
        language = choose_language(info.language, info.language_probability, hint,
                                   self.options.language_threshold, self._supported)
        if language != info.language:  # unsure, and the tenant speaks another language
            segments, _ = self._run(audio, language)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not text:
            raise TranscriptionFailure(NO_SPEECH, "nothing recognised")
        return Transcript(
            text=text, language=language, detected_language=info.language,
            detected_probability=info.language_probability,
            audio_duration_s=info.duration, speech_duration_s=info.duration_after_vad,
            processing_s=time.perf_counter() - started,
        )

    def _run(self, audio: Samples, language: str | None
             ) -> tuple[Iterable[Segment], TranscriptionInfo]:
        result: tuple[Iterable[Segment], TranscriptionInfo] = self.model.transcribe(
            audio, language=language, vad_filter=True, beam_size=self.options.beam_size)
        return result


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What identifies a loaded model: two services in one process with the same spec (the
    tests, a benchmark) share it."""

    model_path: Path | None
    cache_dir: Path
    compute_type: str = "int8"
    cpu_threads: int = 0
    num_workers: int = 1


@functools.cache
def load_model(spec: ModelSpec) -> tuple[WhisperModel, str]:
    """The model and its name, loaded once per process (the assembly checked first)."""
    model_dir = model_dir_from(spec.model_path, spec.cache_dir)
    model = WhisperModel(
        str(model_dir), device="cpu", compute_type=spec.compute_type,
        cpu_threads=spec.cpu_threads, num_workers=spec.num_workers, local_files_only=True,
    )
    return model, model_dir.name


def load_engine(spec: ModelSpec, options: EngineOptions) -> WhisperEngine:
    model, name = load_model(spec)
    return WhisperEngine(model, name, options)
