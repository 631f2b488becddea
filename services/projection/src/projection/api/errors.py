"""The read API's answers to bad input: a 4xx with a short reason, never the value itself (it
may hold a phone number or a message's words) and never a 500 with a traceback."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from switchboard_runtime.telemetry import get_logger

log = get_logger(__name__)

INVALID_VALUE = "invalid value"


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without the ``input`` and ``ctx`` it would echo back."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the parameters' checks let through but Postgres refused (SQLSTATE class 22, or
    one asyncpg could not encode): the caller's input, so a 400. Logged by its route and
    SQLSTATE only; asyncpg's message quotes the value."""
    assert isinstance(exc, asyncpg.DataError)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.warning("read API value refused by the database", route=route,
                sqlstate=getattr(exc, "sqlstate", None), error=type(exc).__name__)
    return JSONResponse({"detail": INVALID_VALUE}, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(asyncpg.DataError, _data_error)
