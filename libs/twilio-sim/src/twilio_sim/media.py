"""Twilio-hosted media: basic auth on the API URL, then a redirect to a short-lived CDN URL.

Like Twilio, the API URL answers 302 to an unauthenticated URL on another path (standing in for
the media CDN host) that expires; a client must follow it without sending credentials along.
"""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from .errors import TwilioError
from .messages_api import require_auth
from .sids import new_sid
from .simulator import get_simulator
from .state import API_VERSION, CdnLink, Media, SimState

router = APIRouter()


def store_media(
    state: SimState, base_url: str, account_sid: str, message_sid: str,
    content_type: str, data: bytes, not_found_times: int | None = None,
) -> tuple[Media, str]:
    """Keep the bytes; answer the media resource and its URL."""
    media = Media(
        sid=new_sid("ME"), message_sid=message_sid, account_sid=account_sid,
        content_type=content_type, data=data,
        not_found_remaining=(state.config.media_not_found_times if not_found_times is None
                             else not_found_times),
    )
    state.media[media.sid] = media
    message_uri = f"{base_url}/{API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}"
    url = f"{message_uri}/Media/{media.sid}"
    return media, url


@router.get(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages/{{message_sid}}/Media/{{media_sid}}")
async def get_media(account_sid: str, message_sid: str, media_sid: str,
                    request: Request) -> Response:
    sim = get_simulator(request)
    state = sim.state
    require_auth(state, account_sid, request)
    media = state.media.get(media_sid)
    missing = TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
    if media is None or media.account_sid != account_sid or media.message_sid != message_sid:
        raise missing
    if media.not_found_remaining > 0:
        media.not_found_remaining -= 1
        raise missing
    token = secrets.token_urlsafe(24)
    state.cdn[token] = CdnLink(media.sid, time.monotonic() + state.config.cdn_url_ttl_s)
    cdn_base = (state.config.cdn_base_url or sim.base_url(request)).rstrip("/")
    return RedirectResponse(f"{cdn_base}/cdn/{token}", status_code=302)


@router.get("/cdn/{token}")
async def get_cdn(token: str, request: Request) -> Response:
    state = get_simulator(request).state
    if state.config.cdn_base_url and "authorization" in request.headers:
        # Credentials sent on to another host are a leak (the real CDN, a pre-signed URL,
        # refuses a second auth mechanism). On the same host, httpx keeps them legitimately.
        return Response("Only one auth mechanism allowed", status_code=400,
                        media_type="text/plain")
    link = state.cdn.get(token)
    if link is None or link.expires_at < time.monotonic():
        state.cdn.pop(token, None)
        return Response("Request has expired", status_code=403, media_type="text/plain")
    media = state.media[link.media_sid]
    return Response(media.data, media_type=media.content_type)
