"""API keys scoped to a tenant (``tenant_api_keys``, made by ``switchboard-tenants``).

A key travels as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. Only its SHA-256 is
stored and looked up. No key, or one that matches nothing: 401. The tenant found scopes every
query, so another tenant's resources answer 404 exactly like missing ones.

A key's role says what it may do: every key reads; only an ``operator`` key acts on
conversations (403 otherwise), as the operator its label names (ADR 0022).
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' signatures, whose
# annotations name dependencies local to the factories below.
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from switchboard_tenants import hash_api_key

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKey",
    description="A tenant's API key (`switchboard-tenants add-api-key`)",
)
BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer",
                    description="The same key as a bearer token")

OPERATOR = "operator"
_LOOKUP = "SELECT tenant_id, role, label FROM tenant_api_keys WHERE key_hash = $1"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who presented the key: its tenant, role and label (an operator's name)."""

    tenant_id: str
    role: str
    label: str


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def caller_dependency(pool: Callable[[], asyncpg.Pool]) -> Callable[..., Awaitable[Caller]]:
    async def caller_of_key(
        api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> Caller:
        key = api_key or (bearer.credentials if bearer else None)
        if not key:
            raise _unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
        row = await pool().fetchrow(_LOOKUP, hash_api_key(key))
        if row is None:
            raise _unauthorized("invalid API key")
        return Caller(row["tenant_id"], row["role"], row["label"])

    return caller_of_key


def tenant_dependency(pool: Callable[[], asyncpg.Pool]) -> Callable[..., Awaitable[str]]:
    """The tenant of any valid key (the read routes)."""
    caller_of_key = caller_dependency(pool)

    async def tenant_of_key(caller: Annotated[Caller, Depends(caller_of_key)]) -> str:
        return caller.tenant_id

    return tenant_of_key


def operator_dependency(pool: Callable[[], asyncpg.Pool]) -> Callable[..., Awaitable[Caller]]:
    """A valid key whose role is ``operator`` (the commands); 403 for any other."""
    caller_of_key = caller_dependency(pool)

    async def operator_of_key(caller: Annotated[Caller, Depends(caller_of_key)]) -> Caller:
        if caller.role != OPERATOR or not caller.label:
            raise HTTPException(403, "this key may read but not act: an operator key is needed")
        return caller

    return operator_of_key
