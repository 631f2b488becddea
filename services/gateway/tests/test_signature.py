"""The one-HMAC signature check accepts exactly what the Twilio SDK's validator accepts."""

from __future__ import annotations

import pytest
from gateway.signature import valid_signature
from twilio.request_validator import RequestValidator

TOKEN = "1" * 32
PARAMS = {"MessageSid": "SM" + "0" * 32, "Body": "¿hola? ñ &=+", "From": "whatsapp:+447700900123",
          "ProfileName": "Zoë", "SmsMessageSid": ""}
URLS = ("https://hooks.example.com/twilio/whatsapp/inbound",
        "https://hooks.example.com:443/twilio/whatsapp/inbound",
        "http://127.0.0.1:8080/twilio/whatsapp/inbound?correlation_id=abc")


@pytest.mark.parametrize("checked", URLS)
@pytest.mark.parametrize("signed", URLS)
def test_same_verdict_as_the_sdk(signed: str, checked: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(signed, PARAMS)
    expected = RequestValidator(TOKEN).validate(checked, PARAMS, signature)
    assert valid_signature(TOKEN, checked, PARAMS, signature) is expected


def test_refused_with_another_token_or_changed_params() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URLS[0], PARAMS)
    assert valid_signature(TOKEN, URLS[0], PARAMS, signature)
    assert not valid_signature("2" * 32, URLS[0], PARAMS, signature)
    assert not valid_signature(TOKEN, URLS[0], {**PARAMS, "Body": "adios"}, signature)
    assert not valid_signature(TOKEN, URLS[0], PARAMS, "")
