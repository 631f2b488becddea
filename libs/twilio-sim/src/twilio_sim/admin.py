"""The simulator's own API under ``/sim``: configure it, script failures, act as a user, inspect."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from .config import Account, Number
from .failures import FailureSpec
from .inbound import InboundRequest, deliver, send_inbound
from .media import store_media
from .sids import new_sid
from .simulator import get_simulator

router = APIRouter(prefix="/sim")
MAX_WAIT_S = 60.0


class LastInbound(BaseModel):
    user: str
    number: str
    age_s: float


class MediaUpload(BaseModel):
    content_type: str
    data_b64: str
    account_sid: str | None = None
    message_sid: str | None = None
    not_found_times: int | None = None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/accounts", status_code=201)
async def add_account(account: Account, request: Request) -> dict[str, str]:
    get_simulator(request).state.add_account(account)
    return {"sid": account.sid}


@router.post("/numbers", status_code=201)
async def add_number(number: Number, request: Request) -> dict[str, Any]:
    try:
        get_simulator(request).state.add_number(number)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return number.model_dump()


@router.get("/numbers")
async def list_numbers(request: Request) -> list[dict[str, Any]]:
    return [n.model_dump() for n in get_simulator(request).state.numbers.values()]


@router.post("/failures", status_code=201)
async def queue_failure(spec: FailureSpec, request: Request) -> dict[str, Any]:
    failures = get_simulator(request).state.failures
    failures.add(spec)
    return {"pending": failures.pending()}


@router.get("/failures")
async def pending_failures(request: Request) -> dict[str, Any]:
    return {"pending": get_simulator(request).state.failures.pending()}


@router.delete("/failures")
async def clear_failures(request: Request) -> dict[str, Any]:
    get_simulator(request).state.failures.clear()
    return {"pending": []}


@router.get("/messages")
async def all_messages(request: Request) -> dict[str, Any]:
    """Every message (both directions, oldest first; with the ContentSid, variables and
    template name it was sent with) and every create attempt, as recorded."""
    state = get_simulator(request).state
    return {
        "messages": [m.sim_entry() for m in state.messages.values()],
        "attempts": [a.as_json() for a in state.attempts],
    }


@router.post("/last-inbound")
async def set_last_inbound(body: LastInbound, request: Request) -> dict[str, Any]:
    """Pretend the user last wrote to the number ``age_s`` seconds ago: more than 24 hours
    closes the WhatsApp window (``enforce_window``) without waiting a day."""
    state = get_simulator(request).state
    state.set_last_inbound(body.user, body.number, body.age_s)
    return {"window_open": state.window_open(body.user, body.number)}


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    get_simulator(request).state.reset()
    return {"status": "reset"}


@router.post("/media", status_code=201)
async def upload_media(upload: MediaUpload, request: Request) -> dict[str, str]:
    sim = get_simulator(request)
    account_sid = upload.account_sid or next(iter(sim.state.accounts), None)
    if account_sid is None or account_sid not in sim.state.accounts:
        raise HTTPException(400, "give the account_sid of a configured account")
    message_sid = upload.message_sid or new_sid("MM")
    media, url = store_media(sim.state, sim.base_url(request), account_sid, message_sid,
                             upload.content_type, base64.b64decode(upload.data_b64),
                             upload.not_found_times)
    return {"url": url, "media_sid": media.sid, "message_sid": message_sid}


@router.post("/inbound")
async def inbound(body: InboundRequest, request: Request) -> dict[str, Any]:
    sim = get_simulator(request)
    return await send_inbound(sim, body, sim.base_url(request))


@router.post("/inbound/{message_sid}/redeliver")
async def redeliver(message_sid: str, request: Request) -> dict[str, Any]:
    """Send the identical signed webhook again, as a Twilio retry or a duplicate would arrive."""
    sim = get_simulator(request)
    delivery = sim.state.inbound.get(message_sid)
    if delivery is None:
        raise HTTPException(404, f"no inbound message {message_sid}")
    return await deliver(sim, delivery)


@router.get("/inbox/{address}")
async def inbox(
    address: str, request: Request,
    after: int = Query(0, description="cursor from the previous answer"),
    wait: float = Query(0.0, description="seconds to wait for a change"),
) -> dict[str, Any]:
    """Messages sent to a user, each with its latest status, changed after the cursor."""
    state = get_simulator(request).state
    changed = await state.wait_inbox(address, after, min(max(wait, 0.0), MAX_WAIT_S))
    cursor = max([after, *(m.seq for m in changed)])
    return {"messages": [m.inbox_entry() for m in changed], "cursor": cursor}
