"""Sender settings (environment variables, see the README)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from switchboard_tenants.settings import TenantServiceSettings


class SenderSettings(TenantServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = (
        *TenantServiceSettings.REQUIRED_IN_PRODUCTION, "gateway_public_url",
    )
    # One Messages API call must fit in the drain (ADR 0012).
    OUTLASTED_BY_DRAIN: ClassVar[tuple[str, ...]] = (
        "twilio_timeout_s", "tenant_webhook_timeout_s",
    )

    service_name: str = "sender"
    # The gateway's public URL (what Twilio calls), e.g. https://hooks.example.com: status
    # callbacks go to <it>/twilio/whatsapp/status?correlation_id=<turn>. Unset (development
    # only): no callbacks are asked for and parts follow each other after PART_TIMEOUT_S.
    gateway_public_url: str | None = None
    # Where the Twilio SDK sends API calls instead of https://api.twilio.com (the simulator
    # locally and in tests); unset means the real Twilio.
    twilio_api_base_url: str | None = None
    # Read/connect timeout of one Messages API call.
    twilio_timeout_s: float = 10.0
    # Part n+1 goes after part n's `sent` callback, or after this long without one.
    part_timeout_s: float = 5.0
    # Messages per second per WhatsApp sender number (Twilio's default is 80), per replica.
    rate_limit_per_s: float = 80.0
    # Calls per part within one delivery of an event for transient failures (5xx, 429,
    # timeouts, connection errors); after that JetStream redelivers the event.
    twilio_max_attempts: int = 4
    retry_base_s: float = 0.5
    retry_max_s: float = 10.0
    # How far before an attempt's time the lookup of an ambiguous send looks (clock skew).
    lookup_skew_s: float = 60.0
    # An attempt without an outcome started by another event is presumed in flight this long.
    in_flight_guard_s: float = 120.0
    # A status callback for a MessageSid not known yet is retried this long (the send that
    # produced it may still be being recorded), then ignored.
    unknown_sid_grace_s: float = 15.0
    # One reply going out per conversation (KV bucket `sender-going-out`): a reply for a newer
    # turn waits, polling this often, until the earlier one is done or has not renewed its
    # lease (before each part) for reply_lease_s (its sender died and its event is not
    # coming back).
    reply_wait_poll_s: float = Field(default=1.0, gt=0)
    reply_lease_s: float = Field(default=120.0, gt=0)
    # A reply's first part needs the conversation's acceptance of its turn in the view (the
    # conversation decides within milliseconds of the agent's reply, in parallel with us): while
    # the view is missing or undecided the handler waits up to this long for its next write
    # (pushed by the replica's watcher of the bucket, or re-read: view_watch.py), then waits
    # durably (a retry, or a timer every reply_wait_poll_s).
    view_settle_s: float = Field(default=1.0, ge=0)
    # Follow the views' writes (one watcher per replica); off: re-read only (5, 10, 20 ... ms).
    view_watch: bool = True
    # A reply whose turn is still undecided this long after it arrived is given up
    # (`not_accepted`): beyond the conversation's turn deadline (300 s, ADR 0016), by which
    # every turn is decided, so only a reply for a turn the conversation never asked for waits
    # that long.
    acceptance_wait_s: float = Field(default=600.0, gt=0)
    # A message the conversation asked for, or the agent's reply (ReplyGenerated 1.4), names
    # the outbound message before it (`after`): its first part waits (a timer every
    # reply_wait_poll_s) until that one has gone out or failed, for at most this long after it
    # arrived; then it goes anyway (logged, counted): the earlier one never reached the
    # sender, or stopped halfway.
    after_wait_s: float = Field(default=300.0, gt=0)
    # The MessageSid -> reply map (KV bucket `sender-messages`); the replicas apply to both.
    messages_kv_ttl_days: float = 30.0
    messages_kv_replicas: int | None = None  # unset: SB_KV_REPLICAS
    # Tenants' handoff webhooks (tenant_webhooks.py): timeout of one POST, deliveries before
    # the dead letter, and the waits after each failed one (the last repeats): ~2.4 h in all.
    tenant_webhook_timeout_s: float = Field(default=10.0, gt=0)
    tenant_webhook_max_deliver: int = Field(default=10, ge=1)
    tenant_webhook_retry_delays_s: tuple[float, ...] = (5.0, 15.0, 60.0, 300.0, 900.0, 1800.0)

    @field_validator("gateway_public_url", "twilio_api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value
