"""What WhatsApp sends, decoded to what Whisper reads: 16 kHz mono float32 samples.

Voice notes are OGG/Opus (``audio/ogg``); forwarded audio files can also be AMR, 3GP, MP3 and
M4A/AAC. PyAV (FFmpeg, bundled in its wheels) decodes all of them from memory. The decoder
stops as soon as the audio passes ``max_seconds``, so a long (or maliciously compressible)
file never fills the memory.
"""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from .failures import TOO_LONG, UNDECODABLE, TranscriptionFailure

SAMPLE_RATE = 16_000

# Base MIME types (parameters such as "; codecs=opus" ignored) accepted as voice notes.
AUDIO_TYPES = frozenset({
    "audio/ogg", "audio/opus", "application/ogg",           # WhatsApp voice notes
    "audio/amr", "audio/amr-nb", "audio/amr-wb",            # AMR
    "audio/3gpp", "audio/3gpp2",                            # 3GP
    "audio/mpeg", "audio/mp3",                              # MP3
    "audio/mp4", "audio/m4a", "audio/x-m4a", "audio/aac",   # M4A / AAC
    "audio/aacp", "audio/x-aac",
    "audio/wav", "audio/x-wav", "audio/wave", "audio/webm",
})

Samples = npt.NDArray[np.float32]


def audio_type_allowed(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in AUDIO_TYPES


def decode(data: bytes, max_seconds: float) -> Samples:
    """16 kHz mono float32 samples of ``data``; raises ``TranscriptionFailure``."""
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[npt.NDArray[np.int16]] = []
    total = 0
    resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise TranscriptionFailure(UNDECODABLE, "no audio stream")
            for frame in _valid_frames(container.decode(audio=0)):
                frame.pts = None  # the resampler must not trip over odd timestamps
                for out in resampler.resample(frame):
                    chunks.append(_samples(out))
                    total += chunks[-1].size
                    if total > limit:
                        raise TranscriptionFailure(TOO_LONG, f"over {max_seconds:g} s")
            chunks.extend(_samples(out) for out in resampler.resample(None))
    except av.FFmpegError as exc:
        raise TranscriptionFailure(UNDECODABLE, type(exc).__name__) from None
    finally:
        # PyAV's resampler graphs are freed by the collector only (faster-whisper #390).
        del resampler
        gc.collect()
    if not chunks or sum(c.size for c in chunks) == 0:
        raise TranscriptionFailure(UNDECODABLE, "no audio samples")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _samples(frame: AudioFrame) -> npt.NDArray[np.int16]:
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


def _valid_frames(frames: Iterator[AudioFrame]) -> Iterator[AudioFrame]:
    """Skips undecodable frames (a damaged page in a voice note), as faster-whisper does."""
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
