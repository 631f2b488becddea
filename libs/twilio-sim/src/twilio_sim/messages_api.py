"""Twilio's Messages API: create, list (with Twilio's filters and paging) and fetch."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .config import WHATSAPP_ADDRESS, Template
from .errors import TwilioError
from .failures import ERROR_CODES, FailureSpec
from .lifecycle import run_lifecycle
from .sids import new_sid
from .simulator import Simulator, get_simulator
from .state import API_VERSION, Attempt, Message, SimState

BODY_LIMIT = 1600
router = APIRouter(prefix=f"/{API_VERSION}/Accounts/{{account_sid}}")


def require_auth(state: SimState, account_sid: str, request: Request) -> None:
    if not state.authenticates(account_sid, request.headers.get("authorization")):
        raise TwilioError(401, 20003)


async def read_form(request: Request) -> tuple[dict[str, str], list[str]]:
    """The form's single-valued fields, and MediaUrl, which the SDK repeats."""
    form: dict[str, str] = {}
    media_urls: list[str] = []
    for name, value in parse_qsl((await request.body()).decode(), keep_blank_values=True):
        if name == "MediaUrl":
            media_urls.append(value)
        else:
            form[name] = value
    return form, media_urls


def draft_message(
    state: SimState, account_sid: str, form: dict[str, str], media_urls: list[str]
) -> Message:
    """Validate a create as Twilio does, in the order it reports the errors."""
    to = form.get("To", "")
    if not to:
        raise TwilioError(400, 21604)
    own_numbers = [n for n in state.numbers.values() if n.account_sid == account_sid]
    from_ = form.get("From") or None
    service_sid = form.get("MessagingServiceSid") or None
    if service_sid is not None:
        in_service = [n for n in own_numbers if n.messaging_service_sid == service_sid]
        if not in_service:
            raise TwilioError(400, 21705)
        from_ = from_ or in_service[0].address
    if from_ is None:
        raise TwilioError(400, 21603)
    if to.startswith("whatsapp:") != from_.startswith("whatsapp:"):
        raise TwilioError(400, 21910)
    if not WHATSAPP_ADDRESS.match(to):
        raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    sender = next((n for n in own_numbers if n.address == from_), None)
    if sender is None:
        raise TwilioError(400, 63007)
    body, content_sid = form.get("Body", ""), form.get("ContentSid") or None
    template: Template | None = None
    variables: dict[str, str] = {}
    if content_sid is not None:
        template, variables = _template(state, account_sid, content_sid, form)
        body = template.render(variables)  # Twilio renders it: Body is not used
    elif form.get("ContentVariables"):
        raise TwilioError(400, 21654)
    if not body and not media_urls:
        raise TwilioError(400, 21602)
    if len(body) > BODY_LIMIT:
        raise TwilioError(400, 21617)
    return Message(
        sid=new_sid("MM" if media_urls else "SM"),
        account_sid=account_sid,
        direction="outbound-api",
        from_=from_,
        to=to,
        body=body,
        status="queued",
        messaging_service_sid=service_sid or sender.messaging_service_sid,
        media_urls=media_urls,
        status_callback=form.get("StatusCallback") or None,
        content_sid=content_sid,
        content_variables=variables,
        template_name=template.friendly_name if template else None,
    )


def _template(state: SimState, account_sid: str, content_sid: str, form: dict[str, str]
              ) -> tuple[Template, dict[str, str]]:
    """The account's template and the variables to fill it with, or Twilio's error: 21655
    for a ContentSid that is malformed, unknown or another account's, 21656 for variables
    that are not a JSON object of strings."""
    template = state.template_of(account_sid, content_sid)
    if template is None:
        raise TwilioError(400, 21655)
    try:
        variables = json.loads(form.get("ContentVariables") or "{}")
    except json.JSONDecodeError:
        raise TwilioError(400, 21656) from None
    if not isinstance(variables, dict):
        raise TwilioError(400, 21656)
    return template, {str(k): str(v) for k, v in variables.items()}


def scripted_error(failure: FailureSpec, to: str) -> TwilioError:
    status, code = ERROR_CODES[failure.kind]
    if failure.kind == "429":
        return TwilioError(status, code, headers={"Retry-After": str(failure.retry_after_s)})
    if failure.kind == "21211":
        return TwilioError(status, code, f"Invalid 'To' Phone Number: {to}")
    return TwilioError(status, code)


async def create(
    sim: Simulator, account_sid: str, request: Request,
    form: dict[str, str], media_urls: list[str], attempt: Attempt,
) -> JSONResponse:
    state = sim.state
    require_auth(state, account_sid, request)
    message = draft_message(state, account_sid, form, media_urls)
    failure = state.failures.take(message.to)
    attempt.scripted = failure.kind if failure else None
    if failure is None or failure.creates_message:
        state.add_message(message)
        attempt.message_sid = message.sid
        outside_window = (
            state.config.enforce_window and message.content_sid is None
            and not state.window_open(message.to, message.from_)
        )
        error_code = 63016 if outside_window or (failure and failure.kind == "63016") else None
        reorder = failure is not None and failure.kind == "reordered_callbacks"
        sim.spawn(run_lifecycle(state, sim.client, message, error_code=error_code,
                                reorder_callbacks=reorder))
    if failure is not None and failure.kind == "timeout":
        await asyncio.sleep(failure.hang_s)
        if not failure.creates_message:
            raise TwilioError(503, 20503)
    elif failure is not None and failure.kind in ERROR_CODES:
        raise scripted_error(failure, message.to)
    return JSONResponse(message.resource(), status_code=201)


@router.post("/Messages.json")
async def create_message(account_sid: str, request: Request) -> JSONResponse:
    sim = get_simulator(request)
    form, media_urls = await read_form(request)
    attempt = sim.state.record_attempt(
        account_sid, {**form, "MediaUrl": media_urls} if media_urls else dict(form)
    )
    try:
        response = await create(sim, account_sid, request, form, media_urls, attempt)
    except TwilioError as exc:
        attempt.status_code, attempt.error_code = exc.status, exc.code
        raise
    attempt.status_code = response.status_code
    return response


def _date_matches(moment: datetime, op: str, value: str) -> bool:
    """Twilio's DateSent filters take a day (YYYY-MM-DD); the SDK sends a full timestamp."""
    bound: date | datetime
    subject: date | datetime
    if "T" in value:
        bound, subject = datetime.fromisoformat(value.replace("Z", "+00:00")), moment
    else:
        bound, subject = date.fromisoformat(value), moment.date()
    if op == "<":
        return subject <= bound
    if op == ">":
        return subject >= bound
    return subject == bound


def _matches(message: Message, filters: dict[str, str]) -> bool:
    if "To" in filters and message.to != filters["To"]:
        return False
    if "From" in filters and message.from_ != filters["From"]:
        return False
    # A message not sent yet has no date_sent: match it by its creation time, so a sender that
    # checks whether an ambiguous create went through also finds one still queued.
    moment = message.date_sent or message.date_created
    return all(
        _date_matches(moment, name.removeprefix("DateSent"), value)
        for name, value in filters.items() if name.startswith("DateSent")
    )


@router.get("/Messages.json")
async def list_messages(account_sid: str, request: Request) -> dict[str, Any]:
    state = get_simulator(request).state
    require_auth(state, account_sid, request)
    query = request.query_params
    filters = {k: query[k] for k in ("To", "From", "DateSent", "DateSent<", "DateSent>")
               if k in query}
    found = [m for m in state.messages.values()
             if m.account_sid == account_sid and _matches(m, filters)]
    found.reverse()  # newest first, as Twilio lists them
    page_size = max(1, min(int(query.get("PageSize", 50)), 1000))
    page = max(0, int(query.get("Page", 0)))
    start = page * page_size
    chunk = found[start:start + page_size]
    path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"

    def page_uri(number: int, token: str | None = None) -> str:
        params = {**filters, "PageSize": page_size, "Page": number}
        if token:
            params["PageToken"] = token
        return f"{path}?{urlencode(params)}"

    has_next = start + page_size < len(found)
    return {
        "messages": [m.resource() for m in chunk],
        "uri": page_uri(page),
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1, "PA" + chunk[-1].sid) if has_next else None,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + max(len(chunk) - 1, 0),
    }


@router.get("/Messages/{message_sid}.json")
async def fetch_message(account_sid: str, message_sid: str, request: Request) -> dict[str, Any]:
    state = get_simulator(request).state
    require_auth(state, account_sid, request)
    message = state.messages.get(message_sid)
    if message is None or message.account_sid != account_sid:
        raise TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
    return message.resource()
