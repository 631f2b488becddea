"""The read API: conversations, their messages, a message's delivery state, the timeline of
a correlation_id and dead letters, for the tenant whose API key is presented."""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, whose
# annotations name aliases local to read_api().
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response

from .. import metrics
from ..settings import ProjectionSettings
from . import models, params, queries
from .auth import tenant_dependency

T = TypeVar("T")

NOT_FOUND = "not found"  # the same for a missing resource and another tenant's

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed cursor, or a value the database cannot take"},
    401: {"description": "No API key, or an invalid one"},
    404: {"description": "No such resource for this key's tenant"},
}
ConversationId = Annotated[str, params.id_path("the conversation's id")]


def available(pool: Callable[[], asyncpg.Pool | None]) -> Callable[[], asyncpg.Pool]:
    """The service's pool, or a 503 while it starts."""

    def db() -> asyncpg.Pool:
        started = pool()
        if started is None:
            raise HTTPException(503, "starting")
        return started

    return db


def read_api(db: Callable[[], asyncpg.Pool], settings: ProjectionSettings) -> APIRouter:
    Tenant = Annotated[str, Depends(tenant_dependency(db))]
    Limit = Annotated[int, Query(ge=1, le=settings.api_max_page_size,
                                 description="items per page")]
    page_size = settings.api_page_size
    router = APIRouter(prefix="/v1", tags=["read"], responses=ERRORS)

    @router.get("/conversations", summary="List and search conversations, newest activity first")
    async def list_conversations(
        tenant: Tenant,
        status: Annotated[Literal["open", "closed"] | None, Query()] = None,
        user: Annotated[str | None, params.text_query("part of the user's address")] = None,
        q: Annotated[str | None, params.text_query("words in a message or transcript")] = None,
        updated_after: Annotated[params.Time | None, Query()] = None,
        updated_before: Annotated[params.Time | None, Query()] = None,
        limit: Limit = page_size,
        cursor: params.Cursor = None,
    ) -> models.Page[models.Conversation]:
        where = queries.ConversationFilter(status, user, q, updated_after, updated_before)
        return await queries.list_conversations(db(), tenant, where, limit, cursor)

    @router.get("/conversations/{conversation_id}", summary="One conversation")
    async def get_conversation(tenant: Tenant, conversation_id: ConversationId
                               ) -> models.Conversation:
        return found(await queries.get_conversation(db(), tenant, conversation_id))

    @router.get("/conversations/{conversation_id}/messages",
                summary="A conversation's messages, oldest first, with their delivery state")
    async def list_messages(tenant: Tenant, conversation_id: ConversationId,
                            limit: Limit = page_size,
                            cursor: params.Cursor = None) -> models.Page[models.Message]:
        found(await queries.get_conversation(db(), tenant, conversation_id))
        return await queries.list_messages(db(), tenant, conversation_id, limit, cursor)

    @router.get("/messages/{message_id}",
                summary="A message and where it is in its journey (parts, Twilio statuses)",
                description="`message_id` is the inbound MessageSid, a reply's id, or the "
                            "Twilio sid of one of a reply's parts.")
    async def get_message(
        tenant: Tenant,
        message_id: Annotated[str, params.id_path("a MessageSid, reply id or part's sid")],
    ) -> models.Message:
        return found(await queries.get_message(db(), tenant, message_id))

    @router.get("/timelines/{correlation_id}",
                summary="Every event of a correlation_id, with each hop's latency")
    async def get_timeline(
        tenant: Tenant,
        correlation_id: Annotated[str, params.id_path("the correlation_id")],
        limit: Limit = page_size, cursor: params.Cursor = None,
    ) -> models.Timeline:
        return found(await queries.get_timeline(db(), tenant, correlation_id, limit, cursor))

    @router.get("/dead-letters", summary="Events a consumer gave up on, newest first")
    async def list_dead_letters(tenant: Tenant, limit: Limit = page_size,
                                cursor: params.Cursor = None) -> models.Page[models.DeadLetter]:
        return await queries.list_dead_letters(db(), tenant, limit, cursor)

    return router


def found(value: T | None) -> T:
    """``value``, or the 404 of a missing resource (another tenant's included)."""
    if value is None:
        raise HTTPException(404, NOT_FOUND)
    return value


def instrument(app: FastAPI) -> None:
    """Count and time read API requests by route template (not by raw path: ids are many)."""

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                      ) -> Response:
        if not request.url.path.startswith("/v1/"):
            return await call_next(request)
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.API_REQUESTS.labels(route, str(response.status_code)).inc()
        metrics.API_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response
