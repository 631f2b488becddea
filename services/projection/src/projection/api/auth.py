"""API keys scoped to a tenant (``tenant_api_keys``, made by ``switchboard-tenants``).

A key travels as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. Only its SHA-256 is
stored and looked up. No key, or one that matches nothing: 401. The tenant found scopes every
query, so another tenant's resources answer 404 exactly like missing ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from switchboard_tenants import hash_api_key

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKey",
    description="A tenant's read-API key (`switchboard-tenants add-api-key`)",
)
BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer",
                    description="The same key as a bearer token")

_LOOKUP = "SELECT tenant_id FROM tenant_api_keys WHERE key_hash = $1"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def tenant_dependency(pool: Callable[[], asyncpg.Pool]) -> Callable[..., Awaitable[str]]:
    async def tenant_of_key(
        api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> str:
        key = api_key or (bearer.credentials if bearer else None)
        if not key:
            raise _unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
        tenant: str | None = await pool().fetchval(_LOOKUP, hash_api_key(key))
        if tenant is None:
            raise _unauthorized("invalid API key")
        return tenant

    return tenant_of_key
