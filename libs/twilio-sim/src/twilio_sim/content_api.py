"""A minimal Content API (``https://content.twilio.com/v1/Content``): register a template as
``client.content.v1.contents.create(...)`` does, fetch it, list the account's templates.

Only the ``twilio/text`` type is kept (its body with ``{{1}}`` placeholders). There is no
approval step: a template is usable as soon as it is created. Twilio authenticates these
calls by basic auth alone (the path has no AccountSid); the template belongs to that account.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from .config import Template
from .errors import TwilioError
from .sids import new_sid
from .simulator import get_simulator
from .state import SimState

router = APIRouter(prefix="/v1/Content")
CONTENT_URL = "https://content.twilio.com/v1/Content"


def _account(state: SimState, request: Request) -> str:
    account_sid = state.account_of(request.headers.get("authorization"))
    if account_sid is None:
        raise TwilioError(401, 20003)
    return account_sid


def resource(template: Template, created: datetime | None = None) -> dict[str, Any]:
    """A Content resource as Twilio answers it."""
    moment = (created or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {
        "sid": template.sid,
        "account_sid": template.account_sid,
        "friendly_name": template.friendly_name,
        "language": template.language,
        "variables": template.variables,
        "types": {"twilio/text": {"body": template.body}},
        "url": f"{CONTENT_URL}/{template.sid}",
        "date_created": moment,
        "date_updated": moment,
        "links": {"approval_fetch": f"{CONTENT_URL}/{template.sid}/ApprovalRequests"},
    }


@router.post("", status_code=201)
async def create_content(request: Request) -> dict[str, Any]:
    state = get_simulator(request).state
    account_sid = _account(state, request)
    try:
        payload = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        raise TwilioError(400, 20001, "Invalid JSON body") from None
    text = ((payload.get("types") or {}).get("twilio/text") or {}).get("body")
    if not isinstance(text, str) or not text:
        raise TwilioError(400, 20001, "types.twilio/text.body is required (the simulator "
                                      "keeps text templates only)")
    template = Template(
        sid=new_sid("HX"), account_sid=account_sid,
        friendly_name=str(payload.get("friendly_name") or ""),
        language=str(payload.get("language") or "en"), body=text,
        variables={str(k): str(v) for k, v in (payload.get("variables") or {}).items()},
    )
    state.add_template(template)
    return resource(template)


@router.get("/{content_sid}")
async def fetch_content(content_sid: str, request: Request) -> dict[str, Any]:
    state = get_simulator(request).state
    template = state.template_of(_account(state, request), content_sid)
    if template is None:
        raise TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
    return resource(template)


@router.get("")
async def list_content(request: Request) -> dict[str, Any]:
    state = get_simulator(request).state
    account_sid = _account(state, request)
    mine = [resource(t) for t in state.templates.values() if t.account_sid == account_sid]
    return {"contents": mine, "meta": {
        "page": 0, "page_size": len(mine), "first_page_url": CONTENT_URL,
        "previous_page_url": None, "next_page_url": None, "url": CONTENT_URL, "key": "contents",
    }}
