"""Create the streams a service owns, idempotently, with the SRE's overrides applied.

Overrides come from the environment, per stream or for all streams:
``SB_STREAM_<NAME>_REPLICAS``, ``_MAX_AGE_DAYS``, ``_STORAGE`` (file|memory) and
``_DUPLICATE_WINDOW_S``, falling back to ``SB_STREAM_DEFAULT_<SETTING>``.
"""

from __future__ import annotations

from typing import Literal

from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError
from pydantic_settings import BaseSettings, SettingsConfigDict
from switchboard_contracts.topology import StreamSpec

from ..telemetry import get_logger

log = get_logger(__name__)


class StreamOverrides(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    replicas: int | None = None
    max_age_days: float | None = None
    storage: Literal["file", "memory"] | None = None
    duplicate_window_s: float | None = None


def stream_config(spec: StreamSpec) -> StreamConfig:
    default = StreamOverrides(_env_prefix="SB_STREAM_DEFAULT_")
    own = StreamOverrides(_env_prefix=f"SB_STREAM_{spec.name}_")

    def pick(name: str, fallback: object) -> object:
        for source in (own, default):
            value = getattr(source, name)
            if value is not None:
                return value
        return fallback

    storage = pick("storage", "file")
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        description=spec.description,
        num_replicas=int(pick("replicas", 1)),  # type: ignore[call-overload]
        max_age=float(pick("max_age_days", spec.max_age_days)) * 86400,  # type: ignore[arg-type]
        storage=StorageType.MEMORY if storage == "memory" else StorageType.FILE,
        duplicate_window=float(pick("duplicate_window_s", spec.duplicate_window_s)),  # type: ignore[arg-type]
        allow_direct=True,
        allow_msg_schedules=spec.allow_msg_schedules or None,
        allow_atomic=spec.allow_atomic or None,
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create the stream, or bring an existing one to the configured settings."""
    config = stream_config(spec)
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=spec.name)
        return
    await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, specs: tuple[StreamSpec, ...]) -> None:
    for spec in specs:
        await ensure_stream(js, spec)


async def ensure_input_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create a stream a service reads when its owner has not started yet; never change an
    existing one (only its owner does)."""
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(stream_config(spec))
        log.info("input stream created ahead of its owner", stream=spec.name)
