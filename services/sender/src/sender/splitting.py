"""Splitting a reply into WhatsApp-sized parts (Twilio refuses bodies over 1600 characters).

Cuts at the last paragraph break that fits, else the last sentence end, else the last
space; a single word longer than the limit is the only thing cut mid-word. A boundary of a
higher level is used only if it keeps the part at least half full, so one early paragraph
break does not make a tiny part.
"""

from __future__ import annotations

import re

BODY_LIMIT = 1600

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
# Sentence end: . ! ? or an ellipsis, closing quotes/brackets, then space.
_SENTENCE = re.compile(r"[.!?\u2026][)\]\"'\u00bb\u201d\u2019]*\s+")
_SPACE = re.compile(r"\s+")


def split_message(text: str, limit: int = BODY_LIMIT) -> list[str]:
    """The parts of ``text``, in order, each at most ``limit`` characters, none empty."""
    if limit < 1:
        raise ValueError("limit must be positive")
    rest = text.strip()
    parts: list[str] = []
    while len(rest) > limit:
        cut = _cut(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _cut(text: str, limit: int) -> int:
    """Where to end the next part: an index in (0, limit]."""
    window = text[: limit + 1]  # a boundary right after the limit still allows a full part
    for pattern, ends_at_match_end in ((_PARAGRAPH, False), (_SENTENCE, True), (_SPACE, False)):
        best = 0
        for match in pattern.finditer(window):
            position = match.start()
            if ends_at_match_end:  # keep the punctuation in this part
                position = match.start() + len(match.group().rstrip())
            if 0 < position <= limit:
                best = position
        if best and (pattern is _SPACE or best >= limit // 2):
            return best
    return limit  # one word longer than the limit
