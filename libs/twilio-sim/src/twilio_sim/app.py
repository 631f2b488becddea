"""The FastAPI application: Twilio's endpoints (Messages, Content), the media CDN and the
``/sim`` admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import admin, content_api, media, messages_api
from .config import SimConfig
from .errors import TwilioError
from .simulator import Simulator


def create_app(config: SimConfig | None = None) -> FastAPI:
    simulator = Simulator(config or SimConfig())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await simulator.stop()

    app = FastAPI(title="Twilio simulator", lifespan=lifespan)
    app.state.simulator = simulator

    @app.exception_handler(TwilioError)
    async def twilio_error(_: Request, exc: TwilioError) -> JSONResponse:
        return exc.response()

    app.include_router(messages_api.router)
    app.include_router(content_api.router)
    app.include_router(media.router)
    app.include_router(admin.router)
    return app
