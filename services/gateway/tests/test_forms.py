"""The form parser decodes a body at once; it must answer exactly as parse_qsl (strict, as it
was) followed by the per-field checks would, for any body."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from gateway import forms
from hypothesis import given, settings
from hypothesis import strategies as st

# Names and values with what matters: separators, escapes, pluses, controls, NULs, non-ASCII.
PIECES = [*"aZ09+%&=;:/ \t\n\x00\x01\x7fé€", "%00", "%0A", "%C3%A9", "%zz", "%C3", "%2B"]
TEXT = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


def reference(raw: bytes) -> dict[str, str] | str:
    """What the parser answered before: parse_qsl's pairs, then every per-field check."""
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=forms.MAX_FIELDS, errors="strict")
        return forms._checked(pairs, controls=True)
    except (UnicodeDecodeError, ValueError) as exc:  # BadForm is a ValueError
        return str(exc) if isinstance(exc, forms.BadForm) else "malformed form body"


def parsed(raw: bytes) -> dict[str, str] | str:
    try:
        return forms.parse_form(raw)
    except forms.BadForm as exc:
        return str(exc)


@settings(max_examples=1000, deadline=None)
@given(body=st.lists(TEXT, max_size=8).map("&".join))
def test_any_raw_body_is_parsed_as_parse_qsl_would(body: str) -> None:
    raw = body.encode()
    assert parsed(raw) == reference(raw)


@settings(max_examples=500, deadline=None)
@given(fields=st.lists(st.tuples(TEXT, TEXT), max_size=8))
def test_any_encoded_form_is_parsed_as_parse_qsl_would(fields: list[tuple[str, str]]) -> None:
    raw = urlencode(fields).encode()
    assert parsed(raw) == reference(raw)


def test_a_twilio_webhook_and_its_refusals() -> None:
    ok = urlencode({"Body": "Hi!\nsee you at 9?", "From": "whatsapp:+14155550101"}).encode()
    assert forms.parse_form(ok) == {"Body": "Hi!\nsee you at 9?", "From": "whatsapp:+14155550101"}
    refused = {b"A=%00": "control characters in A", b"A=1&A=2": "repeated parameter",
               b"A=1&": "malformed form body", b"A=%C3": "malformed form body",
               b"\x01=1": "invalid parameter name", b"Body=\x0b": "control characters in Body"}
    for raw, reason in refused.items():
        assert parsed(raw) == reason
    assert parsed(b"") == {}
    assert parsed(b"&".join([b"a=1"] * (forms.MAX_FIELDS + 1))) == "malformed form body"
