"""What the LLM is sent: the tenant's system prompt and the most recent turns within a budget.

The rule (see docs/adr/0007-agent-context-budget.md):

1. The budget (``LLM_CONTEXT_TOKENS``, default 3000) covers everything sent as prompt: the
   system prompt plus the history messages. The answer's tokens are not part of it.
2. Tokens are estimated, not counted: ``ceil(characters / 3.5) + 4`` per message (the 4 is the
   per-message framing of the chat format). English averages about 4 characters per token
   with OpenAI's tokenizers, so 3.5 over-counts slightly, which keeps us under the budget
   for most languages. (tiktoken would download its encoding files at first use, which a
   locked-down pod cannot do, and other endpoints tokenize differently anyway.)
3. The system prompt is always sent. History messages are taken newest first while they fit;
   the first message that does not fit ends the window, so the model never sees a history
   with a hole in it.
4. The newest message is always sent. If it alone is over what is left of the budget (at
   least ``MIN_NEWEST_TOKENS``), its text is cut to fit, keeping its beginning, marked "…".
5. The window never starts with an assistant message: leading assistant messages are
   dropped (several OpenAI-compatible servers' chat templates require the first non-system
   message to be the user's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from switchboard_contracts.events.conversation import ContextMessage

from .fallbacks import base_language, language_name

CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 4
MIN_NEWEST_TOKENS = 200
ROLES = ("user", "assistant")

ChatMessage = dict[str, str]


def estimate_tokens(text: str) -> int:
    """A conservative estimate of one message's tokens (content plus framing)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def cut_to_tokens(text: str, tokens: int) -> str:
    """The beginning of ``text`` that, with "…", fits ``tokens`` by ``estimate_tokens``."""
    if estimate_tokens(text) <= tokens:
        return text
    chars = max(int((tokens - MESSAGE_OVERHEAD_TOKENS) * CHARS_PER_TOKEN) - 1, 0)
    return text[:chars] + "…"


def system_prompt(base: str, language: str) -> str:
    """The tenant's prompt, plus the language to answer in."""
    code = base_language(language)
    return (f"{base.strip()}\n\nAnswer in {language_name(code)} (language code {language}) "
            "unless the user writes in another language; then answer in theirs. You are "
            "writing WhatsApp messages: plain text, short paragraphs.")


def fit_history(history: Sequence[ContextMessage], budget: int) -> list[ContextMessage]:
    """The most recent messages within ``budget`` tokens, by the rule in the docstring."""
    messages = [m for m in history if m.role in ROLES and m.content.strip()]
    if not messages:
        return []
    newest = messages[-1]
    room = max(budget, MIN_NEWEST_TOKENS)
    if estimate_tokens(newest.content) > room:
        newest = newest.model_copy(update={"content": cut_to_tokens(newest.content, room)})
    kept = [newest]
    used = estimate_tokens(newest.content)
    for message in reversed(messages[:-1]):
        cost = estimate_tokens(message.content)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while len(kept) > 1 and kept[0].role == "assistant":
        kept.pop(0)
    return kept


def build_messages(system: str, history: Sequence[ContextMessage], budget: int
                   ) -> list[ChatMessage]:
    """The chat-completions ``messages``: the system prompt, then the fitted history."""
    remaining = budget - estimate_tokens(system)
    fitted = fit_history(history, remaining)
    return [{"role": "system", "content": system},
            *({"role": m.role, "content": m.content} for m in fitted)]
