"""What a WhatsApp user does: a message to a business number becomes a signed webhook.

The form fields are the ones Twilio sends for WhatsApp; the signature is computed over the
webhook URL (without its fragment) with the auth token of the account that owns the number.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .media import store_media
from .sids import new_sid, utcnow
from .simulator import Simulator
from .state import API_VERSION, InboundDelivery, Message
from .webhooks import post_signed

BODY_LIMIT = 1600


class InboundMedia(BaseModel):
    content_type: str
    data_b64: str
    # Times the media URL answers 404 before it serves the bytes (default: the config's).
    not_found_times: int | None = None


class InboundRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    body: str = ""
    media: list[InboundMedia] = Field(default_factory=list)
    profile_name: str = "Sim User"
    message_type: str | None = None
    # Further form fields to send (Twilio adds new ones without notice).
    extra: dict[str, str] = Field(default_factory=dict)


def message_type(media: list[InboundMedia]) -> str:
    if not media:
        return "text"
    kind = media[0].content_type.split("/", 1)[0]
    return kind if kind in ("audio", "image", "video") else "document"


def webhook_params(
    sim: Simulator, request: InboundRequest, base_url: str
) -> tuple[dict[str, str], str]:
    """The form Twilio would POST, and the account that owns the number."""
    number = sim.state.numbers.get(request.to)
    if number is None:
        raise HTTPException(404, f"no number {request.to} is configured in the simulator")
    sid = new_sid("MM" if request.media else "SM")
    params = {
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "MessageSid": sid,
        "AccountSid": number.account_sid,
        "From": request.from_,
        "To": request.to,
        "Body": request.body[:BODY_LIMIT],  # Twilio truncates long inbound messages
        "NumMedia": str(len(request.media)),
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "WaId": request.from_.removeprefix("whatsapp:").lstrip("+"),
        "ProfileName": request.profile_name,
        "MessageType": request.message_type or message_type(request.media),
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    if number.messaging_service_sid:
        params["MessagingServiceSid"] = number.messaging_service_sid
    for index, item in enumerate(request.media):
        _, url = store_media(sim.state, base_url, number.account_sid, sid, item.content_type,
                             base64.b64decode(item.data_b64), item.not_found_times)
        params[f"MediaContentType{index}"] = item.content_type
        params[f"MediaUrl{index}"] = url
    params.update(request.extra)
    return params, number.account_sid


async def deliver(sim: Simulator, delivery: InboundDelivery) -> dict[str, Any]:
    token = sim.state.accounts[delivery.account_sid].auth_token
    result = await post_signed(sim.client, delivery.url, delivery.params, token,
                               delivery.idempotency_token, sim.state.config.webhook_retry_delay_s)
    delivery.status_codes.extend(result.status_codes)
    return {
        "message_sid": delivery.message_sid,
        "status_code": result.status_code,
        "attempts": result.attempts,
        "error": result.error,
        "response_body": result.body,
        "idempotency_token": delivery.idempotency_token,
    }


async def send_inbound(sim: Simulator, request: InboundRequest, base_url: str) -> dict[str, Any]:
    state = sim.state
    params, account_sid = webhook_params(sim, request, base_url)
    number = state.numbers[request.to]
    if number.webhook_url is None:
        raise HTTPException(409, f"number {request.to} has no webhook URL")
    state.messages[params["MessageSid"]] = Message(
        sid=params["MessageSid"], account_sid=account_sid, direction="inbound",
        from_=request.from_, to=request.to, body=params["Body"], status="received",
        messaging_service_sid=number.messaging_service_sid, date_sent=utcnow(),
        media_urls=[params[f"MediaUrl{i}"] for i in range(len(request.media))],
    )
    state.last_inbound[(request.from_, request.to)] = utcnow()
    delivery = InboundDelivery(
        message_sid=params["MessageSid"], account_sid=account_sid, url=number.webhook_url,
        params=params, idempotency_token=secrets.token_hex(16),
    )
    state.inbound[delivery.message_sid] = delivery
    return await deliver(sim, delivery)
