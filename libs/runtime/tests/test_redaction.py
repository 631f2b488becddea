"""No phone number, token or key gets through the redaction, whatever its encoding."""

from __future__ import annotations

import json
import logging

import pytest
import uvicorn
from cryptography.fernet import Fernet
from switchboard_runtime.telemetry import configure_logging, redact_text

NUMBER = "+14155550101"
DIGITS = NUMBER[1:]
TOKEN = "0123456789abcdef0123456789abcdef"
FERNET_KEY = Fernet.generate_key().decode()
SECRETS = (DIGITS, TOKEN, FERNET_KEY, FERNET_KEY[:-1])

LEAKY = {
    "e164": f"sending to {NUMBER}",
    "without plus": f"sending to {DIGITS}",
    "spaced": "sending to +1 415 555 0101",
    "whatsapp prefix": f"from whatsapp:{NUMBER}",
    "whatsapp without plus": f"from whatsapp:{DIGITS}",
    "url-encoded": f"GET /Messages.json?To=whatsapp%3A%2B{DIGITS}&PageSize=50",
    "url-encoded lower case": f"To=whatsapp%3a%2b{DIGITS}",
    "url-encoded, no prefix": f"GET /Messages.json?To=%2B{DIGITS}",
    "double-encoded": f"next_page=%3FTo%3Dwhatsapp%253A%252B{DIGITS}%26Page%3D1",
    "triple-encoded": f"To=whatsapp%25253A%25252B{DIGITS}",
    "plus as space": f"To=whatsapp%3A+{DIGITS}&From=x",
    "json unicode escape": f'{{"to": "whatsapp:\\u002b{DIGITS}"}}',
    "json newline escape": f'"numbers:\\n{DIGITS}"',
    "json-escaped quotes": f'{{\\"To\\": \\"whatsapp:{NUMBER}\\"}}',
    "python dict repr": f"Query Params: {{'To': 'whatsapp:{NUMBER}', 'DateSent>': '2026'}}",
    "exception text": f"HTTP 400 error: Unable to create record: The 'To' number {NUMBER} "
                      "is not a valid phone number.",
    "exception text, encoded URL": "Unable to fetch page: https://api.twilio.com/2010-04-01/"
                                   f"Accounts/AC1/Messages.json?To=whatsapp%3A%2B{DIGITS}",
    "auth token": f"token {TOKEN}",
    "auth token in a query": f"?token={TOKEN}",
    "basic credentials": f"Authorization: Basic {FERNET_KEY}",
    "fernet key": f"SB_TENANT_KEYS={FERNET_KEY}",
    "fernet key url-encoded": f"key={FERNET_KEY[:-1]}%3D",
}


@pytest.mark.parametrize("text", LEAKY.values(), ids=LEAKY.keys())
def test_nothing_sensitive_gets_through(text: str) -> None:
    redacted = redact_text(text)
    assert "[redacted]" in redacted
    for secret in SECRETS:
        assert secret not in redacted, redacted


KEPT = {
    "account sid": "account AC" + "0123456789abcdef" * 2,
    "message sid": "message SM" + "0123456789abcdef" * 2,
    "uuid": "event 3f2b1c9e-4d5a-4b6c-8d7e-9f0a1b2c3d4e",
    "short numbers": "attempt 3 of 4 after 1500 ms, status 429",
    "encoded text without secrets": "GET /Media?name=a%20b",
    "a lone percent": "100% done",
}


@pytest.mark.parametrize("text", KEPT.values(), ids=KEPT.keys())
def test_ids_and_ordinary_text_are_kept(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize("name", ["twilio.http_client", "httpx", "urllib3.connectionpool",
                                  "uvicorn.access", "openai._base_client"])
def test_third_party_request_lines_are_silenced_and_warnings_redacted(name: str, capsys) -> None:
    configure_logging("test", "DEBUG")
    logger = logging.getLogger(name)
    logger.info("GET Request: https://api.twilio.com/Messages.json?To=whatsapp%%3A%%2B%s", DIGITS)
    logger.warning("failed for To=whatsapp%%3A%%2B%s", DIGITS)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["level"] for line in lines] == ["warning"]
    assert DIGITS not in lines[0]["event"]


def test_a_library_handler_does_not_bypass_the_redaction(capsys) -> None:
    own = logging.StreamHandler()
    logging.getLogger("twilio").addHandler(own)
    configure_logging("test", "INFO")
    assert own not in logging.getLogger("twilio").handlers


def test_a_library_exception_traceback_is_redacted(capsys) -> None:
    configure_logging("test", "INFO")
    try:
        raise RuntimeError(f"Unable to fetch page: /Messages.json?To=whatsapp%3A%2B{DIGITS}")
    except RuntimeError:
        logging.getLogger("some.library").exception("call failed")
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert "RuntimeError: Unable to fetch page" in line["exception"]
    assert DIGITS not in line["exception"]


def test_uvicorn_lines_are_redacted_even_after_uvicorn_configured_its_own_logging(
        capsys) -> None:
    # A uvicorn.Config without log_config=None (a simulator served in the same process, say)
    # gives uvicorn's loggers handlers of their own that do not propagate to the root.
    uvicorn.Config("unused:app")
    configure_logging("test", "INFO")
    logging.getLogger("uvicorn.access").warning("GET /Messages.json?To=%s 200", NUMBER)
    logging.getLogger("uvicorn.error").error("failed for whatsapp:%s", NUMBER)
    written = capsys.readouterr().err
    assert DIGITS not in written, written
    lines = [json.loads(line) for line in written.splitlines()]
    assert [line["logger"] for line in lines] == ["uvicorn.access", "uvicorn.error"]
