"""Agent metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LLM_REQUESTS = Counter(
    "switchboard_agent_llm_requests_total",
    "LLM calls (attempts) by outcome: ok, timeout, transient_error, permanent_error",
    ["tenant", "model", "outcome"],
)
LLM_TOKENS = Counter(
    "switchboard_agent_llm_tokens_total", "Tokens used, by kind (prompt, completion)",
    ["tenant", "model", "kind"],
)
LLM_SECONDS = Histogram(
    "switchboard_agent_llm_seconds", "Duration of one LLM call (attempt)", ["model", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0),
)
LLM_RETRIES = Counter(
    "switchboard_agent_llm_retries_total", "LLM attempts retried, by the reason of the failure",
    ["model", "reason"],
)
FALLBACKS = Counter(
    "switchboard_agent_fallbacks_total",
    "Fallback texts sent: llm_failed, llm_rejected (permanent error), tool_rounds_exceeded, "
    "or the request's reason",
    ["tenant", "reason"],
)
LLM_REJECTED = Counter(
    "switchboard_agent_llm_rejected_total",
    "Requests the LLM endpoint refused for good (401/403/400...): alert on any",
    ["tenant", "model", "reason"],
)
SKIPPED = Counter(
    "switchboard_agent_requests_skipped_total",
    "ReplyRequested not answered: stale, answered, waiting_mode, human_mode, opted_out, "
    "duplicate",
    ["reason"],
)
VIEW_MISSING = Counter(
    "switchboard_agent_view_missing_total",
    "ReplyRequested answered without a conversation view (the conversation service had not "
    "written it yet): steady growth means the views are not being written",
)
TOOL_CALLS = Counter(
    "switchboard_agent_tool_calls_total",
    "Tool calls the LLM made, by tool and outcome: ok, ended_turn, invalid_arguments, "
    "unknown_tool (tool label 'unknown')",
    ["tool", "outcome"],
)
