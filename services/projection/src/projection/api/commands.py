"""Operator commands, forwarded to the conversation service over NATS request-reply (ADR 0022).

The API decides nothing about a conversation: it builds the command from the path, the body
and the caller's key (the tenant and the operator always from the key, never from the body),
sends it on ``commands.conversation.<tenant>`` to the conversation replicas' queue group and
answers with the conversation's ``CommandResult``: 200 accepted, 409 refused (with the
reason). Nobody answering in time is a 503: nothing was done, the operator tries again (the
same ``Idempotency-Key`` makes the retry the same command).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from pydantic import ValidationError
from switchboard_contracts.commands import COMMAND, CommandResult, command_subject
from switchboard_runtime.telemetry import get_logger

from .. import metrics
from .auth import Caller

log = get_logger(__name__)

NOT_ANSWERING = ("the conversation service did not answer: nothing was done, try again "
                 "(with the same Idempotency-Key)")
# Where a command's field came from, for a 422's ``loc`` (the rest is the body's).
_FROM_PATH = {"conversation_id": ("path", "conversation_id")}
_FROM_HEADER = {"command_id": ("header", "idempotency-key")}


def build(caller: Caller, command: str, idempotency_key: str | None,
          **fields: Any) -> Any:
    """The command, validated by its contract; a 422 (without the values) if it is not one."""
    values = {"command": command, "command_id": idempotency_key or uuid.uuid4().hex,
              "tenant_id": caller.tenant_id, "operator_id": caller.label, **fields}
    try:
        return COMMAND.validate_python(values)
    except ValidationError as exc:
        raise RequestValidationError([_located(e) for e in exc.errors()]) from None


def _located(error: Mapping[str, Any]) -> dict[str, Any]:
    # The discriminated union puts the command's name first in the location.
    field = str(error["loc"][1]) if len(error["loc"]) > 1 else ""
    loc = _FROM_PATH.get(field) or _FROM_HEADER.get(field) or ("body", field)
    return {"loc": loc, "msg": error["msg"], "type": error["type"]}


class CommandSender:
    def __init__(self, nc: Callable[[], NATS], timeout_s: float) -> None:
        self._nc = nc
        self._timeout_s = timeout_s

    async def send(self, command: Any) -> JSONResponse:
        """The conversation's answer: 200 accepted, 409 refused; 503 when nobody answers."""
        kind = command.command
        try:
            reply = await self._nc().request(command_subject(command.tenant_id),
                                             command.model_dump_json().encode(),
                                             timeout=self._timeout_s)
            result = CommandResult.model_validate_json(reply.data)
        except (NatsError, TimeoutError) as exc:  # no responders, a timeout, a closed link
            metrics.COMMANDS.labels(kind, "unanswered").inc()
            log.warning("operator command not answered", command=kind,
                        tenant_id=command.tenant_id, error=type(exc).__name__)
            raise HTTPException(503, NOT_ANSWERING) from None
        except ValidationError:
            metrics.COMMANDS.labels(kind, "invalid_answer").inc()
            log.error("operator command answered with no CommandResult", command=kind,
                      tenant_id=command.tenant_id)
            raise HTTPException(502, "the conversation service's answer was not understood"
                                ) from None
        outcome = "accepted" if result.accepted else "refused"
        metrics.COMMANDS.labels(kind, outcome).inc()
        log.info("operator command answered", command=kind, tenant_id=command.tenant_id,
                 conversation_id=getattr(command, "conversation_id", None),
                 operator_id=command.operator_id, outcome=outcome, reason=result.reason)
        return JSONResponse(result.model_dump(mode="json"),
                            status_code=200 if result.accepted else 409)
