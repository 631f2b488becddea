"""The operator inbox page (/inbox) in a real headless browser: Debian's chromium driven by
Playwright, against the projection's app served on a real port and the real conversation
service, over real NATS and Postgres.

The operator opens the page with the key in the URL's fragment. A user sends a voice note
(transcribed), writes a message made of HTML (which must stay text) and asks for a person:
the conversation service hands off, the projection projects it, and the conversation appears
in the page's queue. The operator opens it, claims it and replies from the page (commands
through the operator API to the conversation service); the reply appears, and its tick
advances as the sender's events and Twilio's statuses are projected (✓, ✓✓, blue ✓✓). After
the user opts out a reply is refused and the page says why (409); with the conversation
service gone, it says so (503).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator

import pytest
from conversation.main import build as build_conversation
from conversation.settings import ConversationSettings
from conversation_helpers import (
    ACCOUNT,
    NUMBER,
    TENANT,
    USER,
    count,
    history,
    of_type,
    send_inbound,
    send_transcript,
    wait_for,
)
from nats.js import JetStreamContext
from playwright.async_api import Browser, Page, async_playwright, expect
from projection_scripts import ConversationScript, Published
from pydantic import SecretStr
from switchboard_contracts import Envelope
from switchboard_contracts.events.gateway import Media
from switchboard_devstack.serving import serve_here
from switchboard_runtime import Service
from switchboard_tenants import (
    DirectoryPublisher,
    NewTenant,
    TenantRepository,
    TokenCipher,
    generate_key,
    open_bucket,
)

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make system-packages, or apt-get install "
           "chromium): the inbox page's test drives a real browser")

OPERATOR = "ann"
TRANSCRIPT = "I need to move my appointment"
XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
UI_TIMEOUT_MS = 15_000  # the page polls every 1.5 s; the projection follows the streams


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # Debian's chromium, not a browser Playwright downloads.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def operator_key(projection: Service, js: JetStreamContext,
                       monkeypatch: pytest.MonkeyPatch) -> str:
    """The tenant, in Postgres and in the directory the conversation service reads (with the
    key it decrypts with), and an operator key of it."""
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    assert projection.db is not None
    tenants = TenantRepository(projection.db, TokenCipher.from_env(),
                               DirectoryPublisher(await open_bucket(js)))
    await tenants.add(NewTenant(tenant_id=TENANT, name="Clinic", account_sid=ACCOUNT,
                                auth_token=SecretStr("t" * 32), numbers=(NUMBER,),
                                language="en"))
    return await tenants.add_api_key(TENANT, OPERATOR, role="operator")


@pytest.fixture
async def conversation_service(nats_url: str, operator_key: str) -> AsyncIterator[Service]:
    """The real conversation service (after the tenant is in its directory): it decides the
    user's messages and the operator's commands, as in production."""
    async with build_conversation(ConversationSettings(nats_url=nats_url)).running() as svc:
        yield svc


def sender_events(request: Envelope, text: str) -> list[Published]:
    """What the sender stores for it (accepted, handed to Twilio: queued), then Twilio's
    callbacks sent, delivered and read (the projection's scripts write them exactly as the
    services do)."""
    script = ConversationScript(TENANT, USER, start=request.occurred_at,
                                business_address=NUMBER, account_sid=ACCOUNT)
    script._send(request, [text], ("sent", "delivered", "read"))
    return script.events


async def reply_from_page(page: Page, text: str) -> None:
    await page.get_by_label("Reply").fill(text)
    await page.get_by_role("button", name="Send").click()


async def test_an_operator_sees_a_conversation_arrive_claims_it_replies_and_sees_the_tick(
        projection: Service, conversation_service: Service, js: JetStreamContext,
        operator_key: str, browser: Browser) -> None:
    started = time.monotonic()
    async with serve_here(projection.app) as base_url:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        opened = await page.goto(f"{base_url}/inbox#key={operator_key}")
        assert opened is not None
        policy = (await opened.all_headers())["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy

        # Logged in from the fragment, which leaves the address bar (and the history).
        await expect(page.get_by_text("Nobody is waiting.")).to_be_visible()
        assert operator_key not in page.url
        assert await page.evaluate(
            "sessionStorage.getItem('switchboard.operatorKey')") == operator_key

        # A user sends a voice note (transcribed), writes HTML (to be shown as text), then
        # asks for a person.
        await send_inbound(js, text="", media=[Media(url="https://api.twilio.com/media/ME1",
                                                     content_type="audio/ogg")])
        [transcribe] = of_type(await wait_for(js, count("TranscriptionRequested")),
                               "TranscriptionRequested")
        await send_transcript(js, transcribe, TRANSCRIPT)
        await send_inbound(js, text=XSS)
        await send_inbound(js, text="human")
        queued = page.get_by_role("button", name=USER.removeprefix("whatsapp:"))
        await expect(queued).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(queued).to_contain_text("waiting for a person")
        await queued.click()
        state = page.locator("#conversation-state")
        await expect(state).to_have_text("waiting for a person", timeout=UI_TIMEOUT_MS)
        messages = page.get_by_role("list", name="Messages")
        await expect(messages.get_by_text(XSS, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
        assert await messages.locator("img, script").count() == 0
        assert await page.evaluate("window.pwned") is None
        await expect(messages).to_contain_text(f"Transcript: {TRANSCRIPT}")

        await page.get_by_role("button", name="Claim").click()
        await expect(state).to_have_text(f"with a person ({OPERATOR})", timeout=UI_TIMEOUT_MS)

        text = "Hello, I am Ann. How can I help?"
        await reply_from_page(page, text)
        reply = messages.get_by_role("listitem").filter(has_text=text)
        await expect(reply).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(reply).to_contain_text(OPERATOR)
        await expect(page.get_by_label("Reply")).to_have_value("")
        await expect(reply.get_by_role("img", name="sending")).to_be_visible()

        # The sender sends it, then Twilio reports it sent, delivered, read: ✓, ✓✓, blue ✓✓.
        request = of_type(await history(js), "OutboundMessageRequested")[-1]
        assert request.data["text"] == text
        events = sender_events(request, text)
        for tick in ("sent", "delivered", "read"):
            while events:
                event = events.pop(0)
                await event.publish(js)
                if event.envelope.type == "DeliveryStatusApplied":
                    break
            await expect(reply.get_by_role("img", name=tick)).to_be_visible(
                timeout=UI_TIMEOUT_MS)

        # The user opts out: the conversation refuses the next reply and the page says why.
        await send_inbound(js, text="STOP")
        await expect(state).to_contain_text("opted out", timeout=UI_TIMEOUT_MS)
        await reply_from_page(page, "Are you still there?")
        await expect(page.get_by_role("alert")).to_contain_text(
            "(opted_out)", timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_label("Reply")).to_have_value("Are you still there?")

        # Nobody answers commands any more: 503, and the page says nothing was done.
        await conversation_service.stop()
        await page.get_by_role("button", name="Release to the bot").click()
        await expect(page.get_by_role("alert")).to_contain_text(
            "not answering", timeout=UI_TIMEOUT_MS)
        assert errors == []
    print(f"inbox page browser test: {time.monotonic() - started:.1f} s")
