"""The operator API (ADR 0022): the queue of conversations waiting for a person, one
conversation with its messages, and the commands an operator gives (take over, claim,
release, close, reply, send a template) or a tenant's system gives (a template to a user).

Reads take any of the tenant's keys; commands only an operator key (403 otherwise), acting as
the operator its label names. Another tenant's conversation is not found (404), exactly like
a missing one; the conversation service checks the command's tenant too.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, whose
# annotations name aliases local to operator_api().
from collections.abc import Callable
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from switchboard_contracts.commands import CommandResult

from ..settings import ProjectionSettings
from . import commands, models, queries
from .auth import Caller, operator_dependency, tenant_dependency
from .params import ID_MAX, ID_PATTERN
from .routes import ERRORS, NOT_FOUND, ConversationId, found

COMMAND_ANSWERS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "A key that may read but not act (not an operator key)"},
    409: {"model": CommandResult, "description": "Refused by the conversation, with the "
                                                 "reason (e.g. claimed_by_another)"},
    422: {"description": "Not a valid command (the body, the path or the Idempotency-Key)"},
    503: {"description": "The conversation service did not answer: nothing was done"},
}
IdempotencyKey = Annotated[str | None, Header(
    min_length=8, max_length=ID_MAX, pattern=ID_PATTERN,
    description="Makes a retry the same command (accepted once); default: a new one")]


def operator_api(pool: Callable[[], asyncpg.Pool], sender: commands.CommandSender,
                 settings: ProjectionSettings) -> APIRouter:
    Tenant = Annotated[str, Depends(tenant_dependency(pool))]
    Operator = Annotated[Caller, Depends(operator_dependency(pool))]
    router = APIRouter(prefix="/v1", tags=["operator"], responses=ERRORS)
    shown = settings.api_max_page_size

    @router.get("/operator/queue",
                summary="Conversations waiting for a person (oldest first), then those an "
                        "operator has")
    async def queue(tenant: Tenant) -> models.Queue:
        return await queries.operator_queue(pool(), tenant, shown)

    @router.get("/operator/conversations/{conversation_id}",
                summary="A conversation with its latest messages, each with its delivery state")
    async def conversation(
        tenant: Tenant, conversation_id: ConversationId,
        limit: Annotated[int, Query(ge=1, le=shown, description="messages")] = shown,
    ) -> models.OperatorConversation:
        return found(await queries.operator_conversation(pool(), tenant, conversation_id,
                                                         limit))

    async def on_conversation(caller: Caller, conversation_id: str, command: str,
                              idempotency_key: str | None, **fields: object) -> JSONResponse:
        # The tenant's own conversations only: another's is not found, as a missing one.
        if await queries.get_conversation(pool(), caller.tenant_id, conversation_id) is None:
            raise HTTPException(404, NOT_FOUND)
        return await sender.send(commands.build(caller, command, idempotency_key,
                                                conversation_id=conversation_id, **fields))

    def simple(path: str, command: str, summary: str) -> None:
        @router.post(f"/operator/conversations/{{conversation_id}}/{path}", summary=summary,
                     response_model=CommandResult, responses=COMMAND_ANSWERS,
                     name=command)
        async def act(caller: Operator, conversation_id: ConversationId,
                      idempotency_key: IdempotencyKey = None) -> JSONResponse:
            return await on_conversation(caller, conversation_id, command, idempotency_key)

    simple("take-over", "take_over", "Take the conversation from the bot (claimed at once)")
    simple("claim", "claim", "Claim a conversation waiting for a person")
    simple("release", "release", "Hand the conversation back to the bot")
    simple("close", "close", "Close the conversation (a next message starts a new session)")

    @router.post("/operator/conversations/{conversation_id}/reply",
                 summary="Send the user a message (inside the 24-hour window)",
                 response_model=CommandResult, responses=COMMAND_ANSWERS)
    async def reply(caller: Operator, conversation_id: ConversationId, body: models.ReplyBody,
                    idempotency_key: IdempotencyKey = None) -> JSONResponse:
        return await on_conversation(caller, conversation_id, "reply", idempotency_key,
                                     text=body.text, media_url=body.media_url)

    @router.post("/operator/conversations/{conversation_id}/template",
                 summary="Send the user one of the tenant's approved templates",
                 response_model=CommandResult, responses=COMMAND_ANSWERS)
    async def template(caller: Operator, conversation_id: ConversationId,
                       body: models.TemplateBody,
                       idempotency_key: IdempotencyKey = None) -> JSONResponse:
        return await on_conversation(caller, conversation_id, "send_template", idempotency_key,
                                     template=body.template, variables=body.variables)

    @router.post("/templates/send",
                 summary="Send a user one of the tenant's approved templates "
                         "(business-initiated; refused for a user who opted out)",
                 response_model=CommandResult, responses=COMMAND_ANSWERS)
    async def notify(caller: Operator, body: models.NotifyBody,
                     idempotency_key: IdempotencyKey = None) -> JSONResponse:
        return await sender.send(commands.build(
            caller, "send_template", idempotency_key, user_address=body.user_address,
            business_address=body.business_address, template=body.template,
            variables=body.variables))

    return router
