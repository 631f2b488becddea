from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.topology import GATEWAY
from switchboard_tenants import TenantRecord, TokenCipher
from twilio.request_validator import RequestValidator

PUBLIC = "https://hooks.example.com"
ACCOUNT = "AC" + "a" * 32
OTHER_ACCOUNT = "AC" + "b" * 32
TOKEN = "1" * 32
OTHER_TOKEN = "2" * 32
NUMBER = "whatsapp:+14155550100"
OTHER_NUMBER = "whatsapp:+14155550200"
USER = "whatsapp:+447700900123"
INBOUND_PATH = "/twilio/whatsapp/inbound"
STATUS_PATH = "/twilio/whatsapp/status"


def sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


def inbound_params(**overrides: str) -> dict[str, str]:
    params = {
        "MessageSid": sid(), "SmsMessageSid": "", "AccountSid": ACCOUNT, "From": USER,
        "To": NUMBER, "Body": "Hello, is the clinic open tomorrow?", "NumMedia": "0",
        "NumSegments": "1", "WaId": "447700900123", "ProfileName": "Ada", "MessageType": "text",
        "SmsStatus": "received", "ApiVersion": "2010-04-01",
    }
    params["SmsMessageSid"] = params["MessageSid"]
    params.update(overrides)
    return params


def signed(params: dict[str, str], token: str = TOKEN, url: str = PUBLIC + INBOUND_PATH
           ) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
            "Content-Type": "application/x-www-form-urlencoded"}


def record(tenant_id: str, account: str, token: str, numbers: tuple[str, ...],
           cipher: TokenCipher) -> TenantRecord:
    now = datetime.now(UTC)
    return TenantRecord(
        tenant_id=tenant_id, name=tenant_id, account_sid=account,
        auth_token_encrypted=cipher.encrypt(token), system_prompt="Be brief.", model="m",
        language="en", numbers=numbers, created_at=now, updated_at=now,
    )


async def post(client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str],
               path: str = INBOUND_PATH) -> httpx.Response:
    return await client.post(path, content=urlencode(params), headers=headers)


async def stored(js: JetStreamContext) -> list[Envelope]:
    info = await js.stream_info(GATEWAY.name)
    events = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages == 0:
            break
        msg = await js.get_msg(GATEWAY.name, seq)
        events.append(Envelope.from_bytes(msg.data or b""))
    return events
