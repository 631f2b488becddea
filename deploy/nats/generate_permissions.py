"""Write deploy/nats/permissions.conf: one NATS user per service, allowed exactly the subjects
its code uses (its own events, the JetStream API calls for its streams, consumers and KV
buckets, its dead letters, its reply inbox).

The consumers come from the services' own ConsumerSpecs and the streams from the topology, so
a new consumer or bucket shows up here when the script is run again (a test fails until it
is).

    python deploy/nats/generate_permissions.py          # rewrite permissions.conf
    python deploy/nats/generate_permissions.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import agent.main
import conversation.main
import sender.main
from gateway.ledgers import SENT_BUCKET, STORED_BUCKET
from projection.consumer import PROJECTED, durable_for
from sender.leases import LEASES_BUCKET
from sender.settings import SenderSettings
from sender.store import MESSAGES_BUCKET
from sender.tenant_webhooks import webhook_spec
from switchboard_contracts.commands import COMMAND_SUBJECT_PREFIX
from switchboard_contracts.conversation_view import VIEW_BUCKET
from switchboard_contracts.topology import (
    ADVISORIES,
    AGENT,
    CONVERSATION,
    DEADLETTER,
    GATEWAY,
    SENDER,
    TRANSCRIPTION,
    StreamSpec,
    deadletter_subject,
)
from switchboard_runtime.bus import ConsumerSpec
from switchboard_runtime.bus.deadletters import REPLAY
from switchboard_tenants import BUCKET as TENANTS_BUCKET
from transcription.main import requests_spec

TARGET = Path(__file__).resolve().parent / "permissions.conf"
# Streams every service declares (service.Service.start): it creates or updates them.
RUNTIME_STREAMS = (DEADLETTER, REPLAY, ADVISORIES)


@dataclass(frozen=True)
class Bucket:
    name: str
    write: bool = False  # put/delete (else read only)
    create: bool = False  # created at start-up when missing
    watch: bool = False  # a KV watcher (an ordered consumer on the bucket's stream)


@dataclass
class ServiceUser:
    name: str
    owns: StreamSpec | None
    reads: tuple[StreamSpec, ...]
    consumers: tuple[ConsumerSpec, ...]  # through switchboard_runtime's Consumer
    raw_consumers: tuple[tuple[str, str], ...] = ()  # (stream, durable) pulled by hand
    buckets: tuple[Bucket, ...] = ()
    limits: bool = False  # shared rate-limit counters (switchboard_runtime.limits)
    event_sourced: bool = False  # replays its own stream by batch direct get
    # Request-reply (ADR 0022): subjects it answers (subscribes to, and may publish the
    # replies to its callers' inboxes) and subjects it sends requests to.
    serves: tuple[str, ...] = ()
    requests: tuple[str, ...] = ()

    def subjects(self) -> list[str]:
        allow: list[str] = []
        if self.owns is not None:
            allow.append(self.owns.subjects[0])  # its own events, nobody else's
        for spec in (*((self.owns,) if self.owns else ()), *RUNTIME_STREAMS):
            allow += _stream_api(spec.name, "INFO", "CREATE", "UPDATE")
        for spec in self.reads:  # created ahead of its owner, never changed
            allow += _stream_api(spec.name, "INFO", "CREATE")
        if self.event_sourced and self.owns is not None:
            allow += _direct_get(self.owns.name)
        pulled = [(c.stream, c.durable) for c in self._runtime_consumers()]
        for stream, durable in (*pulled, *self.raw_consumers):
            allow += _consumer_api(stream, durable)
        # The projection's writer re-creates its consumers at its checkpoint (ADR 0021).
        allow += [f"$JS.API.CONSUMER.DELETE.{stream}.{durable}"
                  for stream, durable in self.raw_consumers]
        # Dead letters it files: of its own consumers only, and the originals it fetches.
        durables = [c.durable for c in self.consumers] + [d for _, d in self.raw_consumers]
        allow += [deadletter_subject("*", durable) for durable in durables]
        sources = {c.stream for c in self.consumers} | {s for s, _ in self.raw_consumers}
        if self.consumers:  # and the replays their replay durables ran out of deliveries on
            sources.add(REPLAY.name)
        allow += [f"$JS.API.STREAM.MSG.GET.{stream}" for stream in sorted(sources)]
        if self.limits:
            counters = f"LIMITS_{self.name.upper()}"
            allow += [f"limits.{self.name}.>", *_stream_api(counters, "INFO", "CREATE", "UPDATE")]
        for bucket in self.buckets:
            allow += _bucket_api(bucket)
        allow += self.requests
        return list(dict.fromkeys(allow))

    def permissions(self) -> str:
        """The user's ``permissions`` block."""
        subscribe = ", ".join(f'"{s}"' for s in (f"_INBOX_{self.name}.>", *self.serves))
        # A server answers its callers' requests without naming their inboxes: one reply each.
        responses = "\n        allow_responses: { max: 1 }" if self.serves else ""
        return f"""\
      permissions: {{
        publish: {{ allow: [
{_quoted(self.subjects())}
        ] }}
        subscribe: {{ allow: [{subscribe}] }}{responses}
      }}"""

    def _runtime_consumers(self) -> Iterable[ConsumerSpec]:
        for spec in self.consumers:
            yield spec
            yield spec.for_replays()
        if self.consumers:  # the AdvisoryCollector (bus/collector.py) of a service with any
            yield ConsumerSpec(f"{self.name}-deadletters", ADVISORIES.name, ("",))


def _stream_api(stream: str, *actions: str) -> list[str]:
    return [f"$JS.API.STREAM.{action}.{stream}" for action in actions]


def _direct_get(stream: str) -> list[str]:
    return [f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"]


def _consumer_api(stream: str, durable: str) -> list[str]:
    return [
        f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",
        f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",  # with its filter subject appended
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _bucket_api(bucket: Bucket) -> list[str]:
    stream = f"KV_{bucket.name}"
    allow = _stream_api(stream, "INFO", *(("CREATE",) if bucket.create else ()))
    allow += [*_direct_get(stream), f"$JS.API.STREAM.MSG.GET.{stream}"]
    if bucket.write:
        allow.append(f"$KV.{bucket.name}.>")
    if bucket.watch:  # an ordered consumer, named by the client, with flow control
        allow += [f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
                  f"$JS.API.CONSUMER.INFO.{stream}.*", f"$JS.API.CONSUMER.DELETE.{stream}.*",
                  f"$JS.FC.{stream}.>"]
    return allow


# Every service watches the tenant directory (switchboard_tenants.attach_directory), written
# only by the operator's tools; a service may create it empty when it starts first.
DIRECTORY = Bucket(TENANTS_BUCKET, create=True, watch=True)

USERS = (
    ServiceUser("gateway", GATEWAY, (), (), limits=True, buckets=(
        DIRECTORY, Bucket(STORED_BUCKET, write=True, create=True), Bucket(SENT_BUCKET),
    )),
    ServiceUser("conversation", CONVERSATION, (GATEWAY, AGENT, TRANSCRIPTION), (
        *conversation.main.INBOUND_PARTITIONED, conversation.main.INBOUND_UNPARTITIONED,
        conversation.main.REPLIES, conversation.main.TRANSCRIPTS, conversation.main.TIMERS,
    ), event_sourced=True, buckets=(DIRECTORY, Bucket(VIEW_BUCKET, write=True, create=True)),
        serves=(f"{COMMAND_SUBJECT_PREFIX}.*",)),
    ServiceUser("transcription", TRANSCRIPTION, (CONVERSATION,), (requests_spec(1),),
                buckets=(DIRECTORY,)),
    ServiceUser("agent", AGENT, (CONVERSATION,), (agent.main.REPLIES,),
                buckets=(DIRECTORY, Bucket(VIEW_BUCKET))),
    ServiceUser("sender", SENDER, (AGENT, GATEWAY, CONVERSATION),
                (sender.main.REPLIES, sender.main.REQUESTS, sender.main.STATUSES,
                 sender.main.TIMERS, webhook_spec(SenderSettings())),
                limits=True, event_sourced=True, buckets=(
        DIRECTORY, Bucket(VIEW_BUCKET, watch=True),  # view_watch.py
        Bucket(MESSAGES_BUCKET, write=True, create=True),
        Bucket(LEASES_BUCKET, write=True, create=True),
    )),
    ServiceUser("projection", None, tuple(s for s in PROJECTED if s is not DEADLETTER), (),
                raw_consumers=tuple((s.name, durable_for(s.name)) for s in PROJECTED),
                requests=(f"{COMMAND_SUBJECT_PREFIX}.*",)),
)

HEADER = """\
# GENERATED by deploy/nats/generate_permissions.py from the services' consumers and the
# stream topology; edit the script and re-run it, not this file.
#
# One user per service: it may publish only its own events and the JetStream API subjects of
# its own streams, consumers, dead letters and KV buckets, and receive only on its own reply
# inbox (the runtime connects with inbox prefix _INBOX_<service>). Passwords come from the
# server's environment (SB_NATS_<SERVICE>_PASSWORD); the services read theirs from
# NATS_USER / NATS_PASSWORD. The server parses such a value as config: make each password a
# letter followed by letters and digits (e.g. "p" + `openssl rand -hex 24`). "operator" is
# for people and tools (tenants CLI, dead-letter replays, rebuilds, nats-box): everything.
#
# Include it from the server's config:  include "permissions.conf"
"""


def _quoted(subjects: Iterable[str]) -> str:
    # Quoted: an unquoted $JS... would be read as a variable reference.
    return ",\n".join(f'          "{subject}"' for subject in subjects)


def render() -> str:
    blocks = []
    for user in USERS:
        blocks.append(f"""\
    {{
      user: {user.name}
      password: $SB_NATS_{user.name.upper()}_PASSWORD
{user.permissions()}
    }}""")
    blocks.append("""\
    { user: operator, password: $SB_NATS_OPERATOR_PASSWORD }""")
    users = "\n".join(blocks)
    return f"{HEADER}\nauthorization {{\n  users: [\n{users}\n  ]\n}}\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
