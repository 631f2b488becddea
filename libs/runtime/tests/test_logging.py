from __future__ import annotations

import json
import logging

from switchboard_runtime.telemetry import configure_logging, get_logger, redact_text

PHONE = "+14155550101"
TOKEN = "0123456789abcdef0123456789abcdef"
TEXT = "my secret diagnosis is embarrassing"


def test_log_lines_carry_no_phone_text_or_token(capsys) -> None:
    configure_logging("test", "INFO")
    log = get_logger("test")
    log.info("inbound message", body=TEXT, from_address=f"whatsapp:{PHONE}", auth_token=TOKEN,
             correlation_id="SMabc")
    log.warning(f"could not deliver to whatsapp:{PHONE} with token {TOKEN}")
    try:
        raise ValueError(f"bad number {PHONE}")
    except ValueError:
        log.exception("handler failed", data={"text": TEXT, "to": PHONE})
    logging.getLogger("nats.aio.client").error("stdlib says %s", PHONE)

    out = capsys.readouterr().err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert len(lines) == 4
    for secret in (PHONE, "4155550101", TOKEN, TEXT):
        assert secret not in out
    assert lines[0]["correlation_id"] == "SMabc"  # context survives redaction
    assert lines[0]["body"] == "[redacted]"


def test_account_sids_and_ids_are_not_mistaken_for_secrets() -> None:
    sid = "AC" + "0123456789abcdef" * 2
    assert redact_text(f"account {sid}") == f"account {sid}"
    assert redact_text("event 3f2b1c9e-4d5a-4b6c-8d7e-9f0a1b2c3d4e") == (
        "event 3f2b1c9e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"
    )
