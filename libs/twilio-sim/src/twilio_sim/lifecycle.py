"""What happens to an outbound message after the create: statuses and signed callbacks.

No callback for ``queued``; then ``sent``, ``delivered`` and (with read receipts) ``read``, or
``failed`` with an ErrorCode. The message resource and the recipient's inbox follow along.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import httpx

from .errors import MESSAGES
from .sids import utcnow
from .state import API_VERSION, Message, SimState
from .webhooks import post_signed

log = logging.getLogger("twilio_sim")

EVENT_TYPES = {"delivered": "DELIVERED", "read": "READ"}


def callback_params(message: Message) -> dict[str, str]:
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "ChannelPrefix": "whatsapp",
        "ChannelToAddress": message.to.removeprefix("whatsapp:"),
        "From": message.from_,
        "To": message.to,
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "MessageStatus": message.status,
        "SmsStatus": message.status,
        "StructuredMessage": "false",
    }
    if message.status in EVENT_TYPES:
        params["EventType"] = EVENT_TYPES[message.status]
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if message.error_code is not None:
        params["ErrorCode"] = str(message.error_code)
        params["ErrorMessage"] = message.error_message or ""
    return params


async def send_callback(sim: SimState, client: httpx.AsyncClient, params: dict[str, str],
                        url: str) -> None:
    token = sim.accounts[params["AccountSid"]].auth_token
    result = await post_signed(client, url, params, token, secrets.token_hex(16),
                               sim.config.webhook_retry_delay_s)
    if result.status_code is None or result.status_code >= 400:
        log.warning("status callback %s for %s failed: %s", params["MessageStatus"],
                    params["MessageSid"], result.error or result.status_code)


async def run_lifecycle(
    sim: SimState, client: httpx.AsyncClient, message: Message,
    *, error_code: int | None = None, reorder_callbacks: bool = False,
) -> None:
    delays = sim.config.status_delays
    if error_code is not None:
        steps = [("failed", delays.sent)]
    else:
        steps = [("sent", delays.sent), ("delivered", delays.delivered)]
        if sim.config.read_receipts:
            steps.append(("read", delays.read))
    held: list[dict[str, str]] = []
    for status, delay in steps:
        await asyncio.sleep(delay)
        message.status = status
        if status == "sent":
            message.date_sent = utcnow()
        if status == "failed":
            message.error_code, message.error_message = error_code, MESSAGES.get(error_code or 0)
        sim.touch(message)
        if message.status_callback is None:
            continue
        params = callback_params(message)
        if reorder_callbacks:
            held.append(params)
        else:
            await send_callback(sim, client, params, message.status_callback)
    if held and message.status_callback is not None:
        # Delivered and read first, sent last: an order Twilio does not rule out.
        for params in held[1:] + held[:1]:
            await send_callback(sim, client, params, message.status_callback)
