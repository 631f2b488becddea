"""The transcription service against faster-whisper called directly, on the same clips.

Clips: English sentences spoken by espeak-ng and encoded as OGG/Opus voice notes (2 to 15 s).
Direct: in this process, ``WhisperModel.transcribe(clip, vad_filter=True)`` on every clip
(bytes in, text out), ``num_workers`` clips at a time on as many threads, as a program that
only transcribes would. Ours: the service as its own process (``switchboard-transcription``,
as deployed), on one nats-server, with the Twilio simulator serving the clips: every clip is a
``TranscriptionRequested``, and a round ends when the last ``TranscriptionCompleted`` is
stored, so the service's figure includes the download, the event handling and the publish.
Both use the same model (Whisper base, int8) with the same thread settings; rounds alternate
direct / service; medians. Throughput is audio seconds transcribed per wall-clock second; the
real-time factor (RTF) is processing time per audio second of one clip (lower is faster).

Settings compared (2 cores here): the service's defaults (WHISPER_CPU_THREADS=0, i.e.
CTranslate2's default of 4 threads, WHISPER_NUM_WORKERS=1), then cpu_threads x num_workers
candidates for 2 cores. ``BENCH_TRANSCRIPTION_CONFIGS="1x1,2x1"`` picks others;
``BENCH_TRANSCRIPTION_ROUNDS`` sets the rounds (default 4).
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
from faster_whisper import WhisperModel
from switchboard_contracts import Envelope
from switchboard_contracts.events.conversation import TranscriptionRequested
from switchboard_contracts.topology import CONVERSATION
from switchboard_devstack.embedded import NatsServer, free_port
from switchboard_tenants import generate_key
from transcription.audio import SAMPLE_RATE, decode
from transcription.model_files import default_cache_dir, ensure_model
from twilio_sim import Account, SimConfig
from twilio_sim.chat.speech import speak
from twilio_sim.testing import run_simulator

from .common import Result, median
from .gateway import ACCOUNT, TOKEN, _publish_tenant

BIN = Path(sys.executable).parent
ROUNDS = int(os.environ.get("BENCH_TRANSCRIPTION_ROUNDS", 4))
DEFAULT = (0, 1)  # the service's defaults: CTranslate2's thread count, one worker
CANDIDATES = [(1, 1), (2, 1), (1, 2)]
SENTENCES = [
    "Hello, I would like to book an appointment for Friday morning.",
    "Are you open on Sunday?",
    "My name is Anna and I need to change the time of my visit next week, because I have "
    "to work late on Tuesday. Could we move it to Thursday afternoon instead?",
    "How much does a cleaning cost?",
    "Thank you very much, see you tomorrow at nine.",
    "I have a terrible toothache since yesterday evening, and the pain is getting worse. "
    "Is there any chance that a dentist could see me today, even late in the day? I can come "
    "at any time, I just need something for the pain. Please call me back if you can.",
    "Can I pay by card?",
    "Where exactly is the clinic? I am coming by car and would like to know where to park.",
]


@dataclass(frozen=True)
class Clip:
    ogg: bytes
    seconds: float


@dataclass(frozen=True)
class Run:
    wall_s: float
    audio_s: float
    rtfs: list[float]

    @property
    def throughput(self) -> float:
        return self.audio_s / self.wall_s


def _configs() -> list[tuple[int, int]]:
    raw = os.environ.get("BENCH_TRANSCRIPTION_CONFIGS")
    if raw:
        return [tuple(int(x) for x in item.split("x")) for item in raw.split(",")]  # type: ignore[misc]
    return [DEFAULT, *CANDIDATES]


def _label(config: tuple[int, int]) -> str:
    threads, workers = config
    return f"cpu_threads={threads or 'default(4)'} num_workers={workers}"


# -- direct faster-whisper -----------------------------------------------------------------------
def _direct(model: WhisperModel, clips: list[Clip], workers: int) -> Run:
    def one(clip: Clip) -> float:
        started = time.perf_counter()
        segments, _ = model.transcribe(io.BytesIO(clip.ogg), vad_filter=True)
        "".join(segment.text for segment in segments)
        return (time.perf_counter() - started) / clip.seconds

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rtfs = list(pool.map(one, clips))
    return Run(time.perf_counter() - started, sum(c.seconds for c in clips), rtfs)


# -- the service ---------------------------------------------------------------------------------
class ServiceUnderTest:
    def __init__(self, nats_url: str, sim_url: str, key: str, config: tuple[int, int]) -> None:
        self.port = free_port()
        env = {**os.environ, "NATS_URL": nats_url, "SB_TENANT_KEYS": key,
               "HTTP_PORT": str(self.port), "LOG_LEVEL": "WARNING",
               "MEDIA_ALLOWED_HOSTS": sim_url.split("://", 1)[1],
               "WHISPER_CPU_THREADS": str(config[0]), "WHISPER_NUM_WORKERS": str(config[1])}
        self.proc = subprocess.Popen([str(BIN / "switchboard-transcription")], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("switchboard-transcription exited at start")
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("switchboard-transcription did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _through_service(nats_url: str, sim: Any, clips: list[Clip]) -> Run:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    async with sim.client() as admin:  # fresh media (and message sids) for every round
        stored = [await admin.upload_media("audio/ogg", c.ogg, account_sid=ACCOUNT)
                  for c in clips]
    done: dict[str, dict[str, Any]] = {}
    finished = asyncio.Event()

    async def on_outcome(msg: Any) -> None:
        envelope = Envelope.from_bytes(msg.data)
        done[envelope.data["message_sid"]] = {"type": envelope.type, **envelope.data}
        if len(done) == len(clips):
            finished.set()

    sub = await nc.subscribe("transcription.>", cb=on_outcome)
    started = time.perf_counter()
    for item in stored:
        conversation = f"cv{uuid.uuid4().hex}"
        data = TranscriptionRequested(message_sid=item["message_sid"], media_url=item["url"],
                                      content_type="audio/ogg", account_sid=ACCOUNT,
                                      language_hint="en")
        envelope = Envelope.wrap(data, correlation_id=item["message_sid"], tenant_id="bench",
                                 conversation_id=conversation)
        await js.publish(f"conversation.{conversation}.{data.TYPE}", envelope.to_bytes(),
                         stream=CONVERSATION.name)
    await asyncio.wait_for(finished.wait(), timeout=600)
    wall = time.perf_counter() - started
    await sub.unsubscribe()
    await nc.close()
    failed = [d for d in done.values() if d["type"] != "TranscriptionCompleted"]
    if failed:
        raise RuntimeError(f"transcriptions failed: {failed}")
    rtfs = [d["processing_s"] / d["audio_duration_s"] for d in done.values()]
    return Run(wall, sum(d["audio_duration_s"] for d in done.values()), rtfs)


# -- the comparison ------------------------------------------------------------------------------
async def _compare(config: tuple[int, int], model_dir: Path, nats_url: str, sim: Any,
                   key: str, clips: list[Clip]) -> dict[str, Any]:
    threads, workers = config
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                         cpu_threads=threads, num_workers=workers, local_files_only=True)
    _direct(model, clips[:1], 1)  # warm-up
    service = ServiceUnderTest(nats_url, sim.url, key, config)
    try:
        await service.ready()
        await _through_service(nats_url, sim, clips[:1])  # warm-up
        direct_runs, service_runs = [], []
        for _ in range(ROUNDS):
            direct_runs.append(await asyncio.to_thread(_direct, model, clips, workers))
            service_runs.append(await _through_service(nats_url, sim, clips))
    finally:
        service.stop()
    del model
    direct = median([r.throughput for r in direct_runs])
    ours = median([r.throughput for r in service_runs])
    # Each round's service run against the direct run just before it: a neighbour's load on
    # this (shared) machine then moves both sides of a ratio alike.
    paired = [s.throughput / d.throughput for d, s in zip(direct_runs, service_runs, strict=True)]
    figures = {
        "direct audio s/s": round(direct, 2), "service audio s/s": round(ours, 2),
        "ratio": round(median(paired), 3),
        "ratio per round": [round(r, 3) for r in paired],
        "direct clips/s": round(median([len(clips) / r.wall_s for r in direct_runs]), 3),
        "service clips/s": round(median([len(clips) / r.wall_s for r in service_runs]), 3),
        "direct median RTF": round(statistics.median(direct_runs[-1].rtfs), 3),
        "service median RTF": round(statistics.median(service_runs[-1].rtfs), 3),
    }
    print(f"   {_label(config)}: {figures}", flush=True)
    return figures


async def main() -> Result:
    model_dir = await asyncio.to_thread(ensure_model, default_cache_dir())
    clips = [Clip(ogg, decode(ogg, 600).size / SAMPLE_RATE)
             for ogg in (speak(s) for s in SENTENCES)]
    key = generate_key()
    server = NatsServer().start()
    try:
        await _publish_tenant(server.url, key)
        with run_simulator(SimConfig(accounts=[Account(sid=ACCOUNT, auth_token=TOKEN)])) as sim:
            results = {config: await _compare(config, model_dir, server.url, sim, key, clips)
                       for config in _configs()}
    finally:
        server.cleanup()
    default = results.get(DEFAULT) or next(iter(results.values()))
    best = max(results, key=lambda c: results[c]["service audio s/s"])
    extra: dict[str, Any] = {_label(c): figures for c, figures in results.items()}
    extra["best for 2 cores"] = _label(best)
    extra["best: service / direct"] = results[best]["ratio"]
    # `ours` and `baseline` are the median throughputs; the ratio printed is theirs, while
    # "ratio" in each configuration's figures is the median of the per-round ratios.
    return Result(
        name="transcription",
        metric="audio seconds transcribed per second, service defaults (WHISPER_CPU_THREADS=0, "
               "WHISPER_NUM_WORKERS=1)",
        ours=default["service audio s/s"],
        baseline=default["direct audio s/s"],
        goal="service / direct faster-whisper >= 0.90",
        conditions={"model": "whisper-base (CTranslate2, int8)", "clips": len(clips),
                    "audio_s": round(sum(c.seconds for c in clips), 1),
                    "clip_s": f"{min(c.seconds for c in clips):.1f}-"
                              f"{max(c.seconds for c in clips):.1f}",
                    "format": "OGG/Opus 24 kb/s (espeak-ng)", "rounds": ROUNDS,
                    "vad": True, "beam_size": 5,
                    "service": "own process, media from twilio-sim over HTTP, one nats-server"},
        extra=extra,
    )
