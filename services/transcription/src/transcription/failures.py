"""Why a voice note was not transcribed: the reason codes of ``TranscriptionFailed``.

Two kinds of failure:

- ``TranscriptionFailure``: the same request will fail again (refused URL, 401/403, a file
  over the cap, audio that does not decode...). The handler publishes ``TranscriptionFailed``
  at once, and the user gets the fallback text.
- ``TransientFailure``: worth another attempt (timeouts, 5xx, 429, a fresh URL's 404). Retried
  within the delivery, then by JetStream redelivery; the last delivery publishes
  ``TranscriptionFailed`` with ``final_reason``.
"""

from __future__ import annotations

# Reasons published in TranscriptionFailed (and the `reason` label of the failures metric).
URL_NOT_ALLOWED = "media_url_not_allowed"  # not a Twilio media URL on an allowed host
TYPE_UNSUPPORTED = "media_type_unsupported"  # not a voice-note audio type
TENANT_UNKNOWN = "tenant_unknown"  # no Twilio credentials for the event's tenant
UNAUTHORIZED = "media_unauthorized"  # 401/403: the tenant's credentials are refused
NOT_FOUND = "media_not_found"  # 404 still, after the retries
TOO_LARGE = "media_too_large"  # over MEDIA_MAX_BYTES (WhatsApp's 16 MB)
REJECTED = "media_rejected"  # another 4xx, or too many redirects
UNAVAILABLE = "media_unavailable"  # 5xx, 429, timeouts, connection errors, on every delivery
UNDECODABLE = "audio_undecodable"  # not audio, or corrupted
TOO_LONG = "audio_too_long"  # over TRANSCRIPTION_MAX_AUDIO_S
NO_SPEECH = "no_speech"  # decoded, but nothing was said
ERROR = "transcription_error"  # a bug or a broken model: see the dead letter and the logs


class TranscriptionFailure(Exception):
    """Permanent: publish ``TranscriptionFailed(reason)`` now."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientFailure(Exception):
    """Worth another attempt; ``kind`` names it for metrics and logs."""

    final_reason = UNAVAILABLE

    def __init__(self, kind: str, retry_after_s: float | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retry_after_s = retry_after_s


class NotFoundYet(TransientFailure):
    """A 404: Twilio's fresh media URLs answer it for a moment; later it is for good."""

    final_reason = NOT_FOUND

    def __init__(self) -> None:
        super().__init__("not_found")
