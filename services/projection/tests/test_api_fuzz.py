"""The read API (and the operator API) answers every malformed value with a 4xx and a short
reason: never a 5xx, never a traceback in the log, never the value echoed back.
Property-based, over every route and parameter: cases generated from the OpenAPI document
(schemathesis, valid and invalid), and values known to trouble Postgres (NUL and control
characters, times that overflow when converted to UTC, integers past int64, tampered cursors)
against a real projection."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import schemathesis
from fake_conversation import fake_conversation
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from projection.api import install_error_handlers
from projection_helpers import START, add_operator_key, add_tenant, wait_caught_up
from projection_scripts import ConversationScript, publish
from schemathesis import GenerationMode
from switchboard_runtime import Service

USER = "whatsapp:+447700900001"
BASE = "http://read-api"
# Bounded so the whole file runs in well under a minute on a shared machine.
FUZZ = settings(max_examples=20, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@dataclass
class Api:
    """The projection's read API, called from a worker thread (hypothesis runs the examples
    synchronously) on the loop that owns the database pool."""

    client: httpx.AsyncClient
    loop: asyncio.AbstractEventLoop
    key: str
    conversation_id: str
    message_id: str
    correlation_id: str

    def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return self.send("GET", url, params=params)

    def send(self, method: str, url: str, key: str | None = None,
             **request: Any) -> httpx.Response:
        headers = {**(request.pop("headers", None) or {}), "X-API-Key": key or self.key}
        call = self.client.request(method, url, headers=headers, **request)
        return asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout=30)


@pytest.fixture
async def api(projection: Service, js: JetStreamContext) -> AsyncIterator[Api]:
    assert projection.db is not None
    key = await add_tenant(projection.db, js, "clinic")
    talk = ConversationScript("clinic", USER, start=START)
    sid = talk.text_message("Hello", reply="Hi there, how can I help?", parts=2)
    await publish(js, talk.events)
    await wait_caught_up(js)
    reply = next(e.envelope for e in talk.events if e.envelope.type == "ReplyGenerated")
    transport = httpx.ASGITransport(app=projection.app)  # an app's exception reaches the test
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield Api(client, asyncio.get_running_loop(), key, talk.conversation_id,
                  str(reply.event_id), sid)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_traceback_logged() -> Iterator[None]:
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    logged = [r for r in handler.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not logged, [r.getMessage() for r in logged]


def assert_refused_cleanly(response: httpx.Response, value: str | None = None) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400 and value and len(value) >= 12 and value.isprintable():
        assert value not in response.text  # a reason, not the value


async def test_no_route_answers_5xx_to_what_its_openapi_document_allows_or_forbids(
        api: Api, projection: Service) -> None:
    schema = schemathesis.openapi.from_dict(projection.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [o for o in operations if o.method.upper() == "GET"]  # commands: their own
    assert len(operations) == 8

    def fuzz(strategy: st.SearchStrategy[Any]) -> None:
        @FUZZ
        @given(case=strategy)
        def check(case: Any) -> None:
            sent = case.as_transport_kwargs(base_url=BASE)
            assert_refused_cleanly(api.get(sent["url"], sent.get("params")))

        check()

    with no_traceback_logged():
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                await asyncio.to_thread(fuzz, operation.as_strategy(generation_mode=mode))


async def test_no_command_answers_5xx_to_what_its_openapi_document_allows_or_forbids(
        api: Api, projection: Service, js: JetStreamContext, nc: NATS) -> None:
    """The operator API's commands, with an operator key: a malformed path, header or body is
    a 4xx (the command's contract decides what is well formed)."""
    assert projection.db is not None
    operator = await add_operator_key(projection.db, js, "clinic", "ann")
    schema = schemathesis.openapi.from_dict(projection.app.openapi())
    operations = [o for o in (result.ok() for result in schema.get_all_operations())
                  if o.method.upper() == "POST"]
    assert len(operations) == 7

    def fuzz(strategy: st.SearchStrategy[Any]) -> None:
        @FUZZ
        @given(case=strategy)
        def check(case: Any) -> None:
            sent = case.as_transport_kwargs(base_url=BASE)
            sent.pop("cookies", None)  # none documented
            try:
                response = api.send(sent.pop("method"), sent.pop("url"), operator, **sent)
            except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
                return  # not even sendable over HTTP: no server sees it
            assert_refused_cleanly(response)

        check()

    # Answering, so a command that is well formed is not a 503 (test_operator_api.py says what
    # reaches the conversation).
    async with fake_conversation(nc):
        with no_traceback_logged():
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    await asyncio.to_thread(fuzz, operation.as_strategy(generation_mode=mode))


# -- values known to trouble Postgres, in every parameter ---------------------------------------
def _text() -> st.SearchStrategy[str]:
    """Any text an HTTP client can send (no lone surrogates), control characters likely."""
    characters = st.characters(exclude_categories=["Cs"])
    return st.one_of(
        st.text(characters, min_size=1, max_size=40),
        st.text(st.characters(codec="ascii", categories=["Cc"]), min_size=1, max_size=5),
        st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=5), st.text(max_size=5)),
        st.text(characters, min_size=200, max_size=2000),
    )


# Times valid for Python, out of range once converted to UTC, or not times at all.
_TIMES = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                     "0001-01-01T00:00:00+23:59", "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z",
                     "infinity", "-infinity", "1e400", "99999999999999999999", "2026-02-30T00:00"]),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
_NUMBERS = st.one_of(
    st.integers(), st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30]),
).map(str)


def _cursor_of(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80), _text(), _TIMES)
_CURSORS = st.one_of(
    st.lists(_JSON_VALUES, min_size=0, max_size=5).map(_cursor_of),  # tampered, well formed
    _text(),  # not base64 at all
    st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode()),
)
_VALUES: dict[str, st.SearchStrategy[str]] = {
    "id": _text(), "text": _text(), "status": _text(), "time": st.one_of(_TIMES, _text()),
    "limit": st.one_of(_NUMBERS, _text()), "cursor": _CURSORS,
}


@dataclass(frozen=True)
class Route:
    path: str  # with {id} for its path parameter, if any
    query: dict[str, str]  # parameter -> which kind of value

    def url(self, api: Api, id_value: str | None = None) -> str:
        default = {"/v1/conversations/": api.conversation_id, "/v1/messages/": api.message_id,
                   "/v1/timelines/": api.correlation_id,
                   "/v1/operator/conversations/": api.conversation_id}
        real = next((v for prefix, v in default.items() if self.path.startswith(prefix)), "")
        return self.path.replace("{id}", quote(id_value if id_value is not None else real,
                                               safe=""))


PAGED = {"limit": "limit", "cursor": "cursor"}
ROUTES = [
    Route("/v1/conversations", {"status": "status", "user": "text", "q": "text",
                                "updated_after": "time", "updated_before": "time", **PAGED}),
    Route("/v1/conversations/{id}", {}),
    Route("/v1/conversations/{id}/messages", PAGED),
    Route("/v1/messages/{id}", {}),
    Route("/v1/timelines/{id}", PAGED),
    Route("/v1/dead-letters", PAGED),
    Route("/v1/operator/queue", {}),
    Route("/v1/operator/conversations/{id}", {"limit": "limit"}),
]
# (route, its parameter): every parameter of every route, the path's included.
SLOTS = [(r, "{id}") for r in ROUTES if "{id}" in r.path] + [
    (r, name) for r in ROUTES for name in r.query]


async def test_a_malformed_value_in_any_parameter_is_a_4xx_with_a_reason(api: Api) -> None:
    @settings(FUZZ, max_examples=300)
    @given(slot=st.sampled_from(SLOTS), data=st.data())
    def check(slot: tuple[Route, str], data: st.DataObject) -> None:
        route, name = slot
        kind = "id" if name == "{id}" else route.query[name]
        value = data.draw(_VALUES[kind], label=name)
        if name == "{id}":
            response = api.get(route.url(api, value))
        else:
            response = api.get(route.url(api), {name: value})
        assert_refused_cleanly(response, value)

    with no_traceback_logged():
        await asyncio.to_thread(check)


async def test_the_examples_of_the_issue_are_refused_with_a_reason(api: Api) -> None:
    conversations = "/v1/conversations"
    cases = [
        (conversations, {"q": "nul\x00inside"}, 422),
        (conversations, {"user": "+447700900001\x00"}, 422),
        (conversations, {"updated_after": "0001-01-01T00:00:00+05:00"}, 422),
        (conversations, {"updated_before": "9999-12-31T23:59:59-05:00"}, 422),
        (conversations, {"limit": str(2**63)}, 422),
        ("/v1/dead-letters", {"cursor": _cursor_of(["2026-03-02T09:00:00+00:00", "AGENT",
                                                    "projection-agent", 2**63])}, 400),
        (f"{conversations}/{api.conversation_id}/messages",
         {"cursor": _cursor_of(["0001-01-01T00:00:00+05:00", "m"])}, 400),
        (f"/v1/timelines/{api.correlation_id}",
         {"cursor": _cursor_of(["2026-03-02T09:00:00+00:00", "nul\x00"])}, 400),
        (f"/v1/timelines/{api.correlation_id}", {"cursor": "[" * 600}, 422),
        (f"{conversations}/cv%00x", {}, 422),
    ]
    with no_traceback_logged():
        for url, params, status in cases:
            response = await asyncio.to_thread(api.get, url, params)
            assert response.status_code == status, (url, params, response.text)
            assert "input" not in response.text and "447700900001" not in response.text


async def test_a_value_the_database_refuses_is_a_400_without_a_traceback(
        pool: asyncpg.Pool) -> None:
    """The catch-all behind the parameters' checks: asyncpg's data errors (SQLSTATE class 22,
    or a value it cannot encode) are the caller's input, so a 400 that does not quote it."""
    queries = {  # refused by Postgres; by asyncpg's encoder (twice)
        "text": ("SELECT $1::text", str), "bigint": ("SELECT $1::bigint", int),
        "integer": ("SELECT $1::integer", str)}
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/as/{kind}")
    async def as_(kind: str, value: str) -> object:
        sql, convert = queries[kind]
        return await pool.fetchval(sql, convert(value))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        with no_traceback_logged():
            for kind, value in (("text", "+447700900001\x00"), ("bigint", str(2**63)),
                                ("integer", "+447700900001")):
                response = await client.get(f"/as/{kind}", params={"value": value})
                assert (response.status_code, response.json()) == (
                    400, {"detail": "invalid value"}), kind
