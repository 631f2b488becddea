"""The bounded load: many WhatsApp users writing through the Twilio simulator, which signs and
delivers each webhook (with Twilio's retries) to the gateway on 127.0.0.1.

Each user writes text, voice notes, bursts (several messages while the reply to the first is
in flight) and has Twilio deliver some webhooks again. A few users also bring people into the
loop (ADR 0022) now and then: some write STOP, more messages, and (mostly) START again; others
ask for a person ("human", or an operator takes the conversation over), whom the operator
claims, answers twice in a row and (mostly) releases, after which the user writes again. The
load stops by itself after ``duration_s`` or ``max_messages``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
from switchboard_contracts.topology import conversation_id_for
from twilio_sim.chat.speech import MissingTool, speak
from twilio_sim.client import SimClient

from .facts import Sent
from .operators import Operator

PHRASES = ("Is the clinic open on Saturday?", "Can I move my appointment?",
           "How much is a cleaning?", "Do you take new patients?", "Thanks!",
           "Where do I park?")
SPOKEN = ("Please book an appointment for tomorrow morning", "Can you call me back later")


# One user's opt-out or handoff: (user, index, rng, their sids) -> whether it may recur.
Episode = Callable[[str, int, random.Random, list[str | None]], Awaitable[bool]]


def user_address(index: int) -> str:
    """Reserved fiction numbers (UK 07700 900xxx)."""
    return f"whatsapp:+4477009{index:05d}"


def voice_clips() -> list[bytes]:
    """Real speech as WhatsApp voice notes, or nothing when espeak-ng/opusenc are missing."""
    try:
        return [speak(sentence) for sentence in SPOKEN]
    except MissingTool:
        return []


@dataclass
class LoadPlan:
    users: int = 20
    duration_s: float = 120.0
    max_messages: int = 2000
    seed: int = 1
    think_s: tuple[float, float] = (1.0, 4.0)  # pause between a user's actions
    stop_users: int = 0  # users 1..stop_users opt out now and then
    handoff_users: int = 0  # the next ones ask for a person now and then (needs an operator)
    episode_every: tuple[int, int] = (3, 8)  # actions between a user's opt-outs or handoffs


@dataclass
class Load:
    sim: SimClient
    business: str
    plan: LoadPlan
    clips: list[bytes] = field(default_factory=list)
    operator: Operator | None = None
    sent: list[Sent] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)
    _count: int = 0
    _operator_texts: Iterator[int] = field(default_factory=itertools.count)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _budget_left(self) -> bool:
        return self.elapsed() < self.plan.duration_s and self._count < self.plan.max_messages

    async def run(self) -> list[Sent]:
        self._started = time.monotonic()
        await asyncio.gather(*(self._user(i) for i in range(1, self.plan.users + 1)))
        return self.sent

    async def _user(self, index: int) -> None:
        rng = random.Random(self.plan.seed * 100_003 + index)
        user, mine = user_address(index), list[str | None]()
        episode = self._episode(index)
        next_episode = rng.randint(1, 3)  # early, so that even a short run sees one through
        # Users start spread over the first seconds rather than all at once.
        await asyncio.sleep(rng.uniform(0, min(self.plan.think_s[1], self.plan.duration_s)))
        while self._budget_left():
            next_episode -= 1
            if episode is not None and next_episode == 0:
                again = await episode(user, index, rng, mine)
                episode = episode if again else None
                next_episode = rng.randint(*self.plan.episode_every)
                continue
            roll = rng.random()
            # Voice notes are few: faster-whisper takes seconds of CPU per note on a small
            # machine, and more would measure its capacity rather than the faults.
            if roll < 0.65 or (roll < 0.7 and not self.clips):
                mine.append(await self._text(user, index, rng, "text"))
            elif roll < 0.7:
                mine.append(await self._send(user, "voice", media=rng.choice(self.clips)))
            elif roll < 0.87:
                for _ in range(rng.randint(2, 3)):  # faster than a reply comes back
                    mine.append(await self._text(user, index, rng, "burst"))
            elif known := [sid for sid in mine if sid]:
                await self._redeliver(user, rng.choice(known), concurrently=rng.random() < 0.3)
            await asyncio.sleep(rng.uniform(*self.plan.think_s))

    def _episode(self, index: int) -> Episode | None:
        if index <= self.plan.stop_users:
            return self._opt_out
        if index <= self.plan.stop_users + self.plan.handoff_users and self.operator:
            return self._handoff
        return None

    async def _think(self, rng: random.Random) -> bool:
        """A pause; answers whether there is budget left for the next step."""
        await asyncio.sleep(rng.uniform(*self.plan.think_s))
        return self._budget_left()

    async def _opt_out(self, user: str, index: int, rng: random.Random,
                       mine: list[str | None]) -> bool:
        """STOP, a message or two (answered by nothing), then mostly START. Answers whether
        the user may do it again (not when they stay opted out)."""
        if not await self._keyword(user, "stop", "STOP", mine):
            return True  # never got through: maybe next time
        for _ in range(rng.randint(1, 2)):
            if not await self._think(rng):
                return False
            mine.append(await self._text(user, index, rng, "text"))
        if rng.random() < 0.2 or not await self._think(rng):
            return False  # opted out for good: everything they write now goes unanswered
        return await self._keyword(user, "start", "START", mine)

    async def _handoff(self, user: str, index: int, rng: random.Random,
                       mine: list[str | None]) -> bool:
        """A person in the loop: the user asks ("human"; or the operator takes over), the
        operator claims, the user writes, the operator answers twice in a row and mostly
        releases; then the user writes again (the bot answers). Answers whether it may happen
        again (not when the conversation is left waiting or with the operator)."""
        operator = self.operator
        assert operator is not None
        conversation = conversation_id_for(operator.tenant_id, user)
        if rng.random() < 0.25:
            if not await operator.act(user, conversation, "take_over", rng):
                return False
        else:
            if not await self._keyword(user, "handoff", "human", mine):
                return True
            if rng.random() < 0.15 or not await self._think(rng):
                return False  # left waiting: nobody claims it
            if not await operator.act(user, conversation, "claim", rng):
                return False
        if not await self._think(rng):
            return False
        mine.append(await self._text(user, index, rng, "text"))
        for _ in range(2):  # back to back: they must arrive in this order
            await operator.act(user, conversation, "reply", rng,
                               text=f"[op {index}-{next(self._operator_texts)}] A person here.")
        if rng.random() < 0.15 or not await self._think(rng):
            return False  # kept by the operator
        if not await operator.act(user, conversation, "release", rng):
            return False
        await asyncio.sleep(rng.uniform(*self.plan.think_s))
        mine.append(await self._text(user, index, rng, "text"))
        return True

    async def _keyword(self, user: str, kind: str, text: str, mine: list[str | None],
                       tries: int = 3) -> bool:
        """A keyword written again (a new message) while the gateway refuses it, as a user
        does when nothing happens; answers whether one was answered 200."""
        for _ in range(tries):
            sid = await self._send(user, kind, text=text)
            mine.append(sid)
            if self.sent[-1].status == 200:  # what _send just recorded (no await since)
                return True
        return False

    async def _text(self, user: str, index: int, rng: random.Random, kind: str) -> str | None:
        # Unique per message, so each reply (the simulator's echo) can be told apart.
        return await self._send(user, kind, text=f"[{index}-{self._count}] {rng.choice(PHRASES)}")

    async def _send(self, user: str, kind: str, text: str = "",
                    media: bytes | None = None) -> str | None:
        """Answers the MessageSid, or None when the simulator could not be reached."""
        self._count += 1
        at = self.elapsed()
        try:
            answer = await self.sim.inbound(user, self.business, text,
                                            media=[("audio/ogg", media)] if media else None)
        except httpx.HTTPError:
            self.sent.append(Sent(f"unsent-{self._count}", user, kind, None, at))
            return None
        self.sent.append(Sent(answer["message_sid"], user, kind, answer["status_code"], at))
        return str(answer["message_sid"])

    async def _redeliver(self, user: str, sid: str, *, concurrently: bool) -> None:
        """Twilio delivering the same webhook again (twice at once, sometimes)."""
        at = self.elapsed()
        times = 2 if concurrently else 1
        answers = await asyncio.gather(*(self.sim.redeliver(sid) for _ in range(times)),
                                       return_exceptions=True)
        for answer in answers:
            status = answer.get("status_code") if isinstance(answer, dict) else None
            self.sent.append(Sent(sid, user, "redelivery", status, at))
