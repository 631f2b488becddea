from __future__ import annotations

import os
import subprocess
import sys
from typing import ClassVar

import pytest
from switchboard_runtime import ConfigError, ServiceSettings


class WithSecret(ServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = ("nats_url", "twilio_auth_token")
    INSECURE_FLAGS: ClassVar[tuple[str, ...]] = ("allow_unsigned",)
    twilio_auth_token: str | None = None
    allow_unsigned: bool = False


def test_production_refuses_missing_secret_and_names_it(monkeypatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "production")
    monkeypatch.setenv("NATS_URL", "nats://nats:4222")
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        WithSecret()


def test_production_refuses_default_nats_url(monkeypatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "production")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x")
    with pytest.raises(ConfigError, match="NATS_URL"):
        WithSecret()


def test_production_refuses_insecure_flag(monkeypatch) -> None:
    for name, value in {"SWITCHBOARD_ENV": "production", "NATS_URL": "nats://nats:4222",
                        "TWILIO_AUTH_TOKEN": "x", "ALLOW_UNSIGNED": "true"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="ALLOW_UNSIGNED"):
        WithSecret()


def test_development_starts_with_defaults(monkeypatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_ENV", raising=False)
    assert WithSecret().allow_unsigned is False


@pytest.mark.integration  # a whole Python process
def test_a_service_process_exits_naming_the_setting() -> None:
    script = (
        "from switchboard_runtime import ServiceSettings, Service\n"
        "Service(ServiceSettings()).run()\n"
    )
    env = {**os.environ, "SWITCHBOARD_ENV": "production"}
    env.pop("NATS_URL", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "NATS_URL must be set when SWITCHBOARD_ENV=production" in result.stderr
