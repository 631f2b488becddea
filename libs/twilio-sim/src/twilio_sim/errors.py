"""Twilio's REST error bodies: ``{"code", "message", "more_info", "status"}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

MESSAGES: dict[int, str] = {
    20001: "Invalid request",
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21654: "ContentSid Required",
    21655: "The ContentSid is Invalid",
    21656: "The ContentVariables Parameter is invalid",
    21705: "The Messaging Service Sid is invalid.",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    63007: "Twilio could not find a Channel with the specified From address",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}


class TwilioError(Exception):
    """An API failure answered with Twilio's JSON error body."""

    def __init__(
        self, status: int, code: int, message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")
        self.headers = headers or {}
        super().__init__(f"{status} {code} {self.message}")

    def response(self) -> JSONResponse:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)
