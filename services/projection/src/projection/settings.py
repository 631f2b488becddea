"""Projection settings (environment variables, see the README)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator
from switchboard_runtime import ConfigError, ServiceSettings


class ProjectionSettings(ServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = ("nats_url", "database_url")

    service_name: str = "projection"
    # Apply the schema migrations at start (off when a deployment runs
    # `switchboard-projection-admin migrate` as a job before rolling out).
    migrate_on_start: bool = True
    # Events fetched and written per transaction; the consumers' max_ack_pending is two
    # batches (the one being written, the next fetched meanwhile). Larger catch up faster.
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    # A caught-up stream is asked again after this long: the read models' delay behind the
    # streams when traffic is light.
    poll_interval_s: float = Field(default=0.25, gt=0)
    # How long a fetch waits for the server's answer before the consumer is bound again.
    fetch_timeout_s: float = Field(default=5.0, gt=0)
    # A delivered batch not acknowledged this long is delivered again (then skipped by the
    # checkpoint if it was written).
    ack_wait_s: float = Field(default=60.0, gt=0)
    # Backoff while Postgres is unavailable: from the base, doubling, up to the max.
    retry_base_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=5.0, gt=0)
    # One batch's transaction must finish within this, or it is retried.
    batch_timeout_s: float = Field(default=30.0, gt=0)
    # The writer lease (one replica projects, the others stand by): a standby tries to take
    # it, and the writer checks its lease connection, this often; a check unanswered this
    # long makes the writer give the lease up.
    lease_interval_s: float = Field(default=1.0, gt=0)
    lease_timeout_s: float = Field(default=5.0, gt=0)
    # Allocations between two young-generation garbage collections (Python's default: 700).
    # A batch keeps thousands of objects alive while it is written: at 700 they are scanned
    # again and again before they are freed. 50,000 catches up about 12% faster.
    gc_young_threshold: int = Field(default=50_000, ge=700)
    # Read API pages.
    api_page_size: int = Field(default=50, ge=1)
    api_max_page_size: int = Field(default=200, ge=1)
    # The operator API waits this long for the conversation service to answer a command
    # before answering 503 (nothing was done).
    command_timeout_s: float = Field(default=5.0, gt=0)
    # How often every replica reads the operator queue into its gauges (waiting conversations,
    # the oldest one's age): about the scrape interval.
    handoff_queue_interval_s: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _needs_database(self) -> ProjectionSettings:
        if not self.database_url:
            raise ConfigError("DATABASE_URL must be set: the read models live in Postgres")
        return self
