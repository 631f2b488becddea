"""Validation of what an admin writes: templates, webhook URLs, secrets, handoff settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from switchboard_tenants import Template, TenantRecord, TenantUpdate

from .conftest import new_tenant

SID = "HX" + "0a" * 16
SECRET = SecretStr("s" * 32)


def test_a_template_needs_a_content_sid_and_plain_variable_names() -> None:
    template = Template(name="appointment_reminder", content_sid=SID, language="es",
                        variables=("1", "2"))
    assert template.variables == ("1", "2")
    for bad in (
        {"content_sid": "HX" + "0a" * 15},  # too short
        {"content_sid": "MG" + "0a" * 16},  # not a Content sid
        {"content_sid": SID.upper()},  # Twilio's sids are lowercase hex
        {"name": "Has Spaces"},
        {"language": "english!"},
        {"variables": ("1", "1")},  # twice the same
        {"variables": ("{{1}}",)},
    ):
        fields = {"name": "reminder", "content_sid": SID, "language": "en", **bad}
        with pytest.raises(ValidationError):
            Template.model_validate(fields)


def test_record_template_by_name() -> None:
    record_fields = {
        "tenant_id": "acme", "name": "Acme", "account_sid": "AC" + "a1" * 16,
        "auth_token_encrypted": "x", "system_prompt": "p", "model": "m", "language": "en",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "templates": [{"name": "reminder", "content_sid": SID, "language": "en"}],
    }
    record = TenantRecord.model_validate(record_fields)
    assert record.template("reminder") == Template(name="reminder", content_sid=SID,
                                                   language="en")
    assert record.template("other") is None
    # Defaults for records published before these settings existed.
    assert (record.handoff_deadline_s, record.handoff_unclaimed) == (900, "bot")
    assert record.webhook_url is None and record.handoff_keywords == ()


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/switchboard",
    "https://hooks.example.com:8443/x?y=1",
    "http://localhost:8080/hook",  # a local receiver, for development and tests
    "http://127.0.0.1:9999/hook",
    "https://8.8.8.8/hook",
])
def test_webhook_urls_accepted(url: str) -> None:
    assert TenantUpdate(webhook_url=url).webhook_url == url


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x",  # cleartext outside this machine
    "ftp://hooks.example.com/x",
    "https://user:pass@hooks.example.com/x",  # credentials belong in the secret
    "https://10.0.0.5/x",  # the cluster's own network
    "https://192.168.1.1/x",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata
    "https://[fd00::1]/x",
    "https://2130706433/x",  # 127.0.0.1 written as a number
    "https://0x7f.0.0.1/x",
    "https://127.1/x",
    "https:///x",
    "not a url",
])
def test_webhook_urls_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="webhook_url"):
        TenantUpdate(webhook_url=url)


def test_secrets_are_validated_and_never_shown() -> None:
    with pytest.raises(ValidationError):
        TenantUpdate(webhook_secret=SecretStr("short"))
    with pytest.raises(ValidationError):
        TenantUpdate(llm_api_key=SecretStr(" sk-with-space"))
    update = TenantUpdate(llm_api_key=SecretStr("sk-secret"), webhook_secret=SECRET)
    assert "sk-secret" not in repr(update) and SECRET.get_secret_value() not in repr(update)


def test_a_new_tenant_webhook_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="secret"):
        new_tenant(webhook_url="https://hooks.example.com/x")
    assert new_tenant(webhook_url="https://hooks.example.com/x", webhook_secret=SECRET)


def test_handoff_settings() -> None:
    assert TenantUpdate(handoff_deadline_s=0).handoff_deadline_s == 0  # never expires
    for bad in ({"handoff_deadline_s": -1}, {"handoff_unclaimed": "human"},
                {"handoff_keywords": ("",)}, {"opt_out_keywords": ("x" * 65,)}):
        with pytest.raises(ValidationError):
            TenantUpdate.model_validate(bad)
    assert TenantUpdate(handoff_keywords=(" humano ",)).handoff_keywords == ("humano",)


def test_update_changes_only_what_was_given_and_clears_on_explicit_none() -> None:
    assert TenantUpdate(model="m", name=None).changed() == {"model": "m"}  # name kept
    assert TenantUpdate(llm_api_key=None, webhook_url=None).changed() == {
        "llm_api_key": None, "webhook_url": None}
