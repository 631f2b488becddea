"""The agent's plain rules: context budget, fallbacks, settings, Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from agent.context import (
    MIN_NEWEST_TOKENS,
    build_messages,
    estimate_tokens,
    fit_history,
    system_prompt,
)
from agent.fallbacks import (
    AUDIO_NOT_UNDERSTOOD,
    UNAVAILABLE,
    audio_not_understood_text,
    text_for_reason,
    unavailable_text,
)
from agent.handlers import ReplyHandler, profile_for, skip_reason
from agent.llm import DevResponder
from agent.settings import AgentSettings
from agent_helpers import context, reply_requested
from switchboard_contracts.conversation_view import ConversationView, Mode
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import ReplyRequested
from switchboard_runtime import ConfigError


def test_the_estimate_is_conservative_and_counts_the_framing():
    assert estimate_tokens("") == 4
    assert estimate_tokens("x" * 35) == 14
    assert estimate_tokens("x" * 36) == 15


def test_everything_fits_within_a_generous_budget():
    history = context("a", "b", "c")
    assert fit_history(history, 3000) == history


def test_the_oldest_messages_are_dropped_first():
    history = context("old " * 100, "short", "x" * 350, "newest question")
    budget = estimate_tokens("newest question") + estimate_tokens("x" * 350) + 10
    kept = fit_history(history, budget)
    assert [m.content for m in kept] == ["short", "x" * 350, "newest question"]
    assert sum(estimate_tokens(m.content) for m in kept) <= budget


def test_a_message_that_does_not_fit_ends_the_window_even_if_older_ones_would():
    history = context("tiny", "y" * 1000, "tiny too", "question")
    budget = estimate_tokens("question") + estimate_tokens("tiny too") + 50
    kept = fit_history(history, budget)
    assert [m.content for m in kept] == ["question"]  # "tiny too" is an assistant's: dropped


def test_the_window_never_starts_with_an_assistant_message():
    history = context("u1", "a1", "u2", "a2", "u3")
    budget = sum(estimate_tokens(t) for t in ("a2", "u3"))
    assert [(m.role, m.content) for m in fit_history(history, budget)] == [("user", "u3")]


def test_the_newest_message_is_always_sent_cut_to_fit():
    [newest] = context("z" * 10_000)
    [kept] = fit_history([newest], 50)
    assert kept.content.endswith("…") and kept.content.startswith("zzz")
    assert estimate_tokens(kept.content) <= MIN_NEWEST_TOKENS


def test_the_system_prompt_counts_against_the_budget_and_names_the_language():
    system = system_prompt("Be kind.", "pt-BR")
    assert system.startswith("Be kind.") and "Portuguese" in system and "pt-BR" in system
    history = context(*(f"m{i} " + "w" * 100 for i in range(20)))
    messages = build_messages(system, history, 400)
    assert messages[0] == {"role": "system", "content": system}
    assert sum(estimate_tokens(m["content"]) for m in messages) <= 400
    assert messages[-1]["content"] == history[-1].content


def test_roles_other_than_user_and_assistant_and_empty_messages_are_left_out():
    history = context("a", "b", "c")
    odd = history[1].model_copy(update={"role": "tool"})
    empty = history[0].model_copy(update={"content": "  "})
    assert [m.content for m in fit_history([empty, odd, history[2]], 3000)] == ["c"]


def test_fallbacks_are_localized_with_english_otherwise():
    for code in ("en", "es", "fr", "de", "pt", "it"):
        assert unavailable_text(code) == UNAVAILABLE[code]
        assert audio_not_understood_text(code) == AUDIO_NOT_UNDERSTOOD[code]
    assert unavailable_text("pt-BR") == UNAVAILABLE["pt"]
    assert unavailable_text("ja") == UNAVAILABLE["en"]
    assert unavailable_text(None) == UNAVAILABLE["en"]
    assert text_for_reason("transcription_failed", "de") == AUDIO_NOT_UNDERSTOOD["de"]
    assert text_for_reason("something_else", "de") == UNAVAILABLE["de"]


def _view(turn: int, **fields: object) -> ConversationView:
    return ConversationView(conversation_id="c", tenant_id="t", version=7, turn=turn,
                            **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("view", "turn", "reason"), [
    (None, 1, None),  # no view yet: answered, the sender checks again before sending
    (_view(1), 1, None),
    (_view(3), 4, None),  # the view lags behind the request: answered
    (_view(3), 2, "stale"),  # a newer turn exists
    (_view(3, turn_superseded=True), 3, "stale"),
    (_view(3, mode=Mode.HUMAN), 3, "human_mode"),
    (_view(3, mode=Mode.WAITING), 3, "waiting_mode"),  # a person was asked for
    (_view(3, mode=Mode.WAITING), 4, "waiting_mode"),  # also for a turn the view lags behind
    (_view(3, opted_out=True), 3, "opted_out"),
    (_view(3, mode=Mode.HUMAN, opted_out=True), 2, "stale"),
    # Answered turns: the conversation accepted the reply (a request redelivered late).
    (_view(3, answered_turn=3), 3, "answered"),
    (_view(3, answered_turn=3, mode=Mode.HUMAN), 3, "answered"),
    (_view(3, answered_turn=3), 2, "stale"),  # a later turn was answered
    (_view(3, answered_turn=2), 2, "answered"),  # turn 3 is on its way
    (_view(3, answered_turn=2), 3, None),
    (_view(3, answered_turn=1), 2, "stale"),  # turn 2 was superseded
])
def test_which_turns_are_skipped(view, turn, reason):
    assert skip_reason(view, turn) == reason


def test_production_needs_an_llm_endpoint_and_names_the_setting(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SB_TENANT_KEYS", "SB_TENANT_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    base = {"switchboard_env": "production", "nats_url": "nats://nats:4222",
            "sb_tenant_keys": "k"}
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        AgentSettings(**base)
    assert AgentSettings(**base, openai_api_key="sk-live").llm_endpoint
    assert AgentSettings(**base, openai_base_url="http://vllm:8000/v1").llm_endpoint
    with pytest.raises(ConfigError, match="SB_TENANT_KEYS"):
        AgentSettings(switchboard_env="production", nats_url="nats://n", openai_api_key="k")


def test_development_without_key_or_url_uses_the_dev_responder(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    assert AgentSettings().dev_responder
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8091/v1")
    assert not AgentSettings().dev_responder


@pytest.mark.parametrize("fallback_reason", [None, "transcription_failed"])
async def test_the_reply_carries_the_turns_start_and_after_for_the_sender(fallback_reason):
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    envelope = reply_requested("cv1", fallback_reason=fallback_reason)
    request = ReplyRequested.model_validate(envelope.data).model_copy(
        update={"turn_started_at": started, "after": "reply-1"})
    settings = AgentSettings(nats_url="nats://n")
    handler = ReplyHandler(settings, DevResponder())
    events = await handler._reply(envelope, request, profile_for(None, None, settings), "t")
    generated = [e for e in events if isinstance(e, ReplyGenerated)]
    assert [(g.turn_started_at, g.after) for g in generated] == [(started, "reply-1")]
