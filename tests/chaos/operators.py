"""An operator acting on conversations during the load, as people do (ADR 0022): half of the
commands through the projection's operator API with the demo tenant's operator key, half
straight to the conversation replicas' queue group over NATS request-reply.

Whatever the faults do (a projection or conversation replica killed, a NATS leader being
elected, the conversation not yet in the read models), a command is retried with the same
``command_id`` until the conversation answers: accepted once, however many times it is sent.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.aio.client import Client as NATS
from switchboard_contracts.commands import COMMAND, CommandResult, command_subject

from .cluster_stack import NATS_TROUBLE
from .facts import OperatorAction

PATHS = {"take_over": "take-over", "claim": "claim", "release": "release", "reply": "reply"}
# Refusals that only mean "not yet": the user's keyword or the claim is still on its way.
NOT_YET = frozenset({"not_waiting", "unknown_conversation"})
RETRY_EVERY_S = 0.5


@dataclass
class Operator:
    nc: NATS
    projections: Callable[[], list[str]]  # the projection replicas' base URLs now
    key: str  # an operator-role API key of the tenant
    tenant_id: str
    operator_id: str
    patience_s: float = 30.0  # retrying one command for at most this long
    actions: list[OperatorAction] = field(default_factory=list)
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10.0))

    async def aclose(self) -> None:  # contextlib.aclosing
        await self._http.aclose()

    async def act(self, user: str, conversation_id: str, command: str, rng: random.Random,
                  text: str = "") -> bool | None:
        """Gives ``command`` until the conversation accepts it, refuses it for good or
        ``patience_s`` runs out (None: no answer); records it as an ``OperatorAction``."""
        via = "nats" if rng.random() < 0.5 else "api"
        command_id = f"chaos-{uuid.uuid4().hex}"
        deadline = time.monotonic() + self.patience_s
        result: CommandResult | None = None
        while time.monotonic() < deadline:
            if via == "nats":
                result = await self._over_nats(conversation_id, command, command_id, text)
            else:
                result = await self._over_api(rng.choice(self.projections() or [""]),
                                              conversation_id, command, command_id, text)
            if result is not None and (result.accepted or result.reason not in NOT_YET):
                break
            await asyncio.sleep(RETRY_EVERY_S)
        accepted = result.accepted if result is not None else None
        reason = result.reason if result is not None else "no_answer"
        self.actions.append(OperatorAction(user, command, command_id, accepted, reason, text,
                                           via))
        return accepted

    async def _over_api(self, base_url: str, conversation_id: str, command: str,
                        command_id: str, text: str) -> CommandResult | None:
        """None: no answer worth keeping (a replica down, a 503, the conversation not yet in
        the read models)."""
        body: dict[str, Any] | None = {"text": text} if command == "reply" else None
        try:
            response = await self._http.post(
                f"{base_url}/v1/operator/conversations/{conversation_id}/"
                f"{PATHS[command]}", json=body,
                headers={"X-API-Key": self.key, "Idempotency-Key": command_id})
        except httpx.HTTPError:
            return None
        if response.status_code in (200, 409):
            return CommandResult.model_validate_json(response.content)
        return None

    async def _over_nats(self, conversation_id: str, command: str, command_id: str,
                         text: str) -> CommandResult | None:
        fields: dict[str, Any] = {"command": command, "command_id": command_id,
                                  "tenant_id": self.tenant_id, "operator_id": self.operator_id,
                                  "conversation_id": conversation_id}
        if command == "reply":
            fields["text"] = text
        payload = COMMAND.dump_json(COMMAND.validate_python(fields))
        try:
            reply = await self.nc.request(command_subject(self.tenant_id), payload, timeout=5.0)
        except NATS_TROUBLE:
            return None
        return CommandResult.model_validate_json(reply.data)
