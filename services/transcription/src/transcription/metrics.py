"""Transcription metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMPLETED = Counter(
    "switchboard_transcription_completed_total", "Voice notes transcribed, by language",
    ["language"],
)
FAILURES = Counter(
    "switchboard_transcription_failures_total",
    "TranscriptionFailed published, by reason (see failures.py); media_unauthorized and "
    "media_url_not_allowed deserve an alert",
    ["reason"],
)
REAL_TIME_FACTOR = Histogram(
    "switchboard_transcription_real_time_factor",
    "Processing time (decode + VAD + Whisper) over the audio's duration; below 1 is faster "
    "than real time",
    buckets=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0),
)
AUDIO_SECONDS = Histogram(
    "switchboard_transcription_audio_seconds", "Duration of the voice notes transcribed",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
PROCESSING_SECONDS = Histogram(
    "switchboard_transcription_processing_seconds",
    "Decode + VAD + Whisper time of one voice note (on its worker thread)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300),
)
QUEUE_SECONDS = Histogram(
    "switchboard_transcription_queue_seconds",
    "Time a downloaded voice note waited for a free transcription worker",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
DOWNLOAD_SECONDS = Histogram(
    "switchboard_transcription_download_seconds",
    "One media download attempt (redirects included), by outcome", ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
DOWNLOAD_BYTES = Histogram(
    "switchboard_transcription_download_bytes", "Size of the media downloaded",
    buckets=(10e3, 50e3, 100e3, 250e3, 500e3, 1e6, 2e6, 4e6, 8e6, 16e6),
)
MEDIA_RETRIES = Counter(
    "switchboard_transcription_media_retries_total",
    "Media downloads retried within a delivery, by kind (not_found, timeout, http_503...)",
    ["kind"],
)
DUPLICATES = Counter(
    "switchboard_transcription_duplicates_skipped_total",
    "Requests for a voice note this process had already answered (not transcribed again)",
)
IN_PROGRESS = Gauge(
    "switchboard_transcription_in_progress", "Voice notes being decoded or transcribed",
)
MODEL_INFO = Gauge(
    "switchboard_transcription_model_info", "The loaded model (value 1)",
    ["model", "compute_type", "cpu_threads", "num_workers"],
)
