"""Media download over real HTTP: the Twilio simulator and scripted media hosts."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from transcription.download import DownloadPolicy, Media, MediaClient
from transcription.failures import NotFoundYet, TranscriptionFailure, TransientFailure
from transcription.media_url import AllowList, UrlNotAllowed, check_media_url
from transcription_helpers import ACCOUNT, TOKEN, MediaHost, host_of, new_sid
from twilio_sim.testing import RunningSimulator

MB = 1024 * 1024


def url_of(raw: str, message_sid: str, allowed: AllowList) -> httpx.URL:
    return check_media_url(raw, account_sid=ACCOUNT, message_sid=message_sid, allowed=allowed)


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., MediaClient]]:
    made: list[MediaClient] = []

    def make(*hosts: str, **policy: object) -> MediaClient:
        values: dict[str, object] = {"allowed": AllowList.parse(list(hosts)), "max_bytes": 16 * MB,
                                     "retry_delays_s": (0.05, 0.1), "read_timeout_s": 2.0}
        values.update(policy)
        made.append(MediaClient(DownloadPolicy(**values)))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


async def download_from(host: MediaHost, client: MediaClient, token: str = TOKEN) -> Media:
    """A new message's media on ``host``, fetched as the transcription does."""
    sid = new_sid("MM")
    return await client.download(url_of(host.media_url(sid), sid, client.policy.allowed),
                                 (ACCOUNT, token))


async def upload(sim: RunningSimulator, data: bytes, not_found_times: int = 0) -> dict[str, str]:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sim.url}/sim/media", json={
            "content_type": "audio/ogg", "data_b64": base64.b64encode(data).decode(),
            "account_sid": ACCOUNT, "not_found_times": not_found_times})
        response.raise_for_status()
        return dict(response.json())


async def test_twilio_media_is_fetched_with_basic_auth_and_the_cdn_gets_no_credentials(
        simulator: RunningSimulator, client_for: Callable[..., MediaClient]) -> None:
    # The simulator redirects to its CDN on "localhost", where a request with an
    # Authorization header is refused (400): only a client that drops it gets the bytes.
    stored = await upload(simulator, b"OggS voice bytes")
    port = host_of(simulator.url).rsplit(":", 1)[1]
    client = client_for(host_of(simulator.url), f"localhost:{port}")
    url = url_of(stored["url"], stored["message_sid"], client.policy.allowed)
    media = await client.download(url, (ACCOUNT, TOKEN))
    assert media.data == b"OggS voice bytes"
    assert media.content_type == "audio/ogg"


async def test_a_fresh_media_urls_brief_404_is_retried(
        simulator: RunningSimulator, client_for: Callable[..., MediaClient]) -> None:
    stored = await upload(simulator, b"OggS late bytes", not_found_times=2)
    port = host_of(simulator.url).rsplit(":", 1)[1]
    client = client_for(host_of(simulator.url), f"localhost:{port}")
    url = url_of(stored["url"], stored["message_sid"], client.policy.allowed)
    media = await client.download(url, (ACCOUNT, TOKEN))
    assert media.data == b"OggS late bytes" and media.attempts == 3


async def test_a_404_that_stays_is_not_found_after_the_retries(
        host: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.status(404))
    client = client_for(host_of(host.url))
    with pytest.raises(NotFoundYet) as failed:
        await download_from(host, client)
    assert failed.value.final_reason == "media_not_found"
    assert len(host.requests) == 3  # the first try and the two retries, then no more


async def test_a_401_fails_at_once_and_is_not_retried(
        host: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.status(401))
    client = client_for(host_of(host.url))
    with pytest.raises(TranscriptionFailure) as failed:
        await download_from(host, client, token="wrong-token")
    assert failed.value.reason == "media_unauthorized"
    assert len(host.requests) == 1
    assert host.requests[0].authorization is not None
    assert host.requests[0].authorization.startswith("Basic ")


async def test_a_redirect_off_the_allow_list_is_refused_and_never_followed(
        host: MediaHost, outside: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.redirect(f"{outside.url}/steal"))
    client = client_for(host_of(host.url))
    with pytest.raises(UrlNotAllowed):
        await download_from(host, client)
    assert len(host.requests) == 1
    assert outside.requests == []


async def test_a_redirect_to_another_allowed_host_goes_there_without_credentials(
        host: MediaHost, outside: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    cdn = outside  # allowed this time: it plays the media CDN
    host.answer(MediaHost.redirect(f"{cdn.url}/cdn/token"))
    cdn.answer(MediaHost.body(b"OggS from the cdn"))
    client = client_for(host_of(host.url), host_of(cdn.url))
    media = await download_from(host, client)
    assert media.data == b"OggS from the cdn"
    assert host.requests[0].authorization is not None
    assert [(s.path, s.authorization) for s in cdn.requests] == [("/cdn/token", None)]


async def test_redirect_loops_end(host: MediaHost,
                                  client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.redirect("/again"))
    client = client_for(host_of(host.url), max_redirects=3)
    with pytest.raises(TranscriptionFailure, match="redirects"):
        await download_from(host, client)
    assert len(host.requests) == 4


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_a_file_over_the_cap_is_refused_without_being_downloaded_whole(
        host: MediaHost, client_for: Callable[..., MediaClient], declare_length: bool) -> None:
    total = 256 * MB
    host.answer(host.stream(total, declare_length=declare_length))
    client = client_for(host_of(host.url), max_bytes=1 * MB)
    with pytest.raises(TranscriptionFailure) as failed:
        await download_from(host, client)
    assert failed.value.reason == "media_too_large"
    assert len(host.requests) == 1  # not retried
    # The server could only hand over what the connection buffers hold before we hung up.
    assert host.streamed_bytes < total / 8


async def test_a_body_that_is_not_audio_is_refused(
        host: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.body(b"<html>login</html>", content_type="text/html"))
    client = client_for(host_of(host.url))
    with pytest.raises(TranscriptionFailure) as failed:
        await download_from(host, client)
    assert failed.value.reason == "media_type_unsupported"


async def test_5xx_and_slow_answers_are_retried_within_the_delivery(
        host: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.status(503, {"Retry-After": "0"}),
                MediaHost.body(b"late", delay_s=2.0),  # past the read timeout
                MediaHost.body(b"OggS at last"))
    client = client_for(host_of(host.url), read_timeout_s=0.5)
    media = await download_from(host, client)
    assert media.data == b"OggS at last" and media.attempts == 3


async def test_a_host_down_for_every_attempt_is_a_transient_failure(
        host: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.status(502))
    client = client_for(host_of(host.url))
    with pytest.raises(TransientFailure) as failed:
        await download_from(host, client)
    assert failed.value.kind == "http_502"
    assert failed.value.final_reason == "media_unavailable"
    assert len(host.requests) == 3


async def test_a_long_retry_after_is_left_to_redelivery(
        host: MediaHost, client_for: Callable[..., MediaClient]) -> None:
    host.answer(MediaHost.status(429, {"Retry-After": "120"}))
    client = client_for(host_of(host.url), retry_after_max_s=10.0)
    with pytest.raises(TransientFailure, match="http_429"):
        await download_from(host, client)
    assert len(host.requests) == 1
