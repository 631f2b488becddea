"""Settings shared by every service, read from the environment by pydantic-settings.

In production a service refuses to start when a required setting is missing or an insecure
flag is on, and the error names the environment variable to fix.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message names the setting."""


class NatsUser(BaseSettings):
    """This process's NATS user (deploy/nats/permissions.conf): ``NATS_USER`` and
    ``NATS_PASSWORD``, or a credentials file ``NATS_CREDS``; none of them: anonymous. The
    services and the operators' CLIs alike."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_creds: str | None = None

    def nats_connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.connect`` for this user."""
        password = self.nats_password.get_secret_value() if self.nats_password else None
        return {"user": self.nats_user, "password": password,
                "user_credentials": self.nats_creds}


class ServiceSettings(NatsUser):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    # Settings a production deployment must set explicitly (defaults are for local runs only).
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = ("nats_url",)
    # Boolean escape hatches that must stay off in production.
    INSECURE_FLAGS: ClassVar[tuple[str, ...]] = ()
    # Environment names for required settings that are properties over several fields.
    SETTING_NAMES: ClassVar[dict[str, str]] = {}
    # Timeouts of one handler step that must not be cut by a pod stop (an LLM call, a Twilio
    # call): each must stay below DRAIN_TIMEOUT_S, or a stop cuts a call that is then paid
    # for twice (ADR 0012).
    OUTLASTED_BY_DRAIN: ClassVar[tuple[str, ...]] = ()

    service_name: str = "switchboard"
    switchboard_env: Environment = Environment.DEVELOPMENT
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str | None = None
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    log_level: str = "INFO"
    otel_exporter_otlp_endpoint: str | None = None
    drain_timeout_s: float = 25.0
    # How long start-up may wait for NATS (and Postgres) to answer before the process exits 1.
    startup_timeout_s: float = 60.0

    @property
    def production(self) -> bool:
        return self.switchboard_env is Environment.PRODUCTION

    @model_validator(mode="after")
    def _drain_outlasts_each_step(self) -> ServiceSettings:
        for name in self.OUTLASTED_BY_DRAIN:
            if getattr(self, name) >= self.drain_timeout_s:
                raise ConfigError(
                    f"{name.upper()} ({getattr(self, name)} s) must be below DRAIN_TIMEOUT_S "
                    f"({self.drain_timeout_s} s): a pod stop would cut the call"
                )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> ServiceSettings:
        if not self.production:
            return self
        for name in self.REQUIRED_IN_PRODUCTION:
            value = getattr(self, name)
            # A field must be set explicitly (its default is for local runs); a derived
            # property (one of several fields) just has to have a value.
            explicit = name in self.model_fields_set or name not in type(self).model_fields
            if not explicit or value in (None, ""):
                setting = self.SETTING_NAMES.get(name, name.upper())
                raise ConfigError(f"{setting} must be set when SWITCHBOARD_ENV=production")
        for name in self.INSECURE_FLAGS:
            if getattr(self, name):
                raise ConfigError(f"{name.upper()} must be off when SWITCHBOARD_ENV=production")
        return self
