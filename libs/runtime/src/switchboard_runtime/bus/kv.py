"""Settings shared by every KV bucket a service creates.

``SB_KV_REPLICAS`` (default 1) is the replica count of every bucket, as
``SB_STREAM_DEFAULT_REPLICAS`` is for streams: 3 on a 3-node cluster. A bucket's own override
(e.g. ``SB_KV_TENANTS_REPLICAS``) wins.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class KvDefaults(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SB_KV_", extra="ignore")

    replicas: int = 1


def kv_replicas(own: int | None = None) -> int:
    """The replicas of a new bucket: its own override when set, else ``SB_KV_REPLICAS``."""
    return own if own is not None else KvDefaults().replicas
