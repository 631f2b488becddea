"""What the gateway stores for an unusable MediaUrl (an empty URL, gateway/forms.py) and the
rest of that class end in a TranscriptionFailed, so the conversation sends the fallback."""

from __future__ import annotations

import pytest
from nats.js import JetStreamContext
from transcription.media_url import AllowList, UrlNotAllowed, check_media_url
from transcription_helpers import (
    ACCOUNT,
    new_sid,
    outcome,
    request_transcription,
    running_service,
    settings,
)

ALLOWED = AllowList.parse("api.twilio.com")


@pytest.mark.parametrize("url", [
    "", "file:///etc/passwd", "ftp://api.twilio.com/x", "javascript:alert(1)", "not a url",
    "data:audio/ogg;base64,AA", "https://api.twilio.com/" + "x" * 3000,
    "https://api.twilio.com/a\x00b", "https://api.twilio.com/a\nb",
])
def test_every_unusable_media_url_is_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowed) as refused:
        check_media_url(url, account_sid=ACCOUNT, message_sid=new_sid("MM"), allowed=ALLOWED)
    assert refused.value.reason == "media_url_not_allowed"


@pytest.mark.usefixtures("engine", "tenant")
async def test_the_gateways_empty_media_url_ends_in_a_transcription_failed(
        nats_url: str, js: JetStreamContext) -> None:
    async with running_service(settings(nats_url, ["api.twilio.com"])):
        sid = new_sid("MM")
        await request_transcription(js, "", sid)
        result = await outcome(js, sid)
    assert result.type == "TranscriptionFailed"
    assert result.data["reason"] == "media_url_not_allowed"
