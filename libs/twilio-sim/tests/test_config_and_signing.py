from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from twilio.request_validator import RequestValidator
from twilio_sim import SimConfig, load_config
from twilio_sim.webhooks import sign, signing_url, split_fragment

EXAMPLE = Path(__file__).parent.parent / "sim.example.toml"


def test_the_example_toml_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.numbers[0].address == "whatsapp:+14155238886"
    assert config.numbers[0].account_sid == config.accounts[0].sid


def test_json_config_loads_and_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "sim.json"
    good.write_text(json.dumps({"accounts": [{"sid": "AC" + "a" * 32, "auth_token": "t"}]}))
    assert load_config(good).accounts[0].auth_token == "t"
    with pytest.raises(ValidationError):
        SimConfig.model_validate({"accounts": [{"sid": "AC123", "auth_token": "t"}]})
    with pytest.raises(ValidationError):
        SimConfig.model_validate({"numbers": [{"address": "+1415", "account_sid": "x"}]})


def test_fragment_sets_retries_and_is_not_part_of_the_url() -> None:
    url, policy = split_fragment("https://gw.example/twilio?x=1#rc=3&rp=5xx,ct&rt=20000")
    assert url == "https://gw.example/twilio?x=1"
    assert (policy.retries, policy.retry_on, policy.read_timeout_s) == (
        3, frozenset({"5xx", "ct"}), 15.0)
    default_url, default = split_fragment("http://gw/twilio")
    assert (default_url, default.retries, default.retry_on) == ("http://gw/twilio", 1,
                                                                frozenset({"ct"}))


def test_https_is_signed_without_the_port() -> None:
    assert signing_url("https://gw.example:8443/hook?a=b") == "https://gw.example/hook?a=b"
    assert signing_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    params = {"Body": "hi", "From": "whatsapp:+1"}
    signature = sign("https://gw.example:8443/hook", params, "token")
    assert RequestValidator("token").validate("https://gw.example:8443/hook", params, signature)
