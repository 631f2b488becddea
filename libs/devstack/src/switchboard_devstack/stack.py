"""``make run``: the whole stack on one machine, on embedded NATS and Postgres.

State lives under ``.run/`` (git-ignored) so a second ``make run`` keeps the conversations.
Each service runs as its own processes (one per replica), as in production, with its logs in
``.run/logs``. A supervisor restarts a process that died, with a growing back-off. Ctrl-C (or
SIGTERM) stops the services gracefully, then the servers; nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .embedded import (
    ExitedEarly,
    NatsAuth,
    NatsCluster,
    NatsServer,
    PostgresServer,
    free_port,
    wait_for_port,
)

# Restart back-off: doubles from the first delay up to the last; a process that stayed up
# this long counts as healthy again, so its next crash restarts it quickly.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
STEADY_AFTER_S = 30.0
STOP_TIMEOUT_S = 30.0  # a service's drain on SIGTERM, then SIGKILL


def preferred_port(port: int) -> int:
    """``port`` when it is free (stable URLs for people), else any free one."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass
class Process:
    """One replica of a service: its own process, HTTP port and log file."""

    name: str  # the service
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    replica: int = 1
    log_name: str = ""  # under the stack's logs folder
    restart_at: float | None = None  # set while it waits for the supervisor to restart it
    _proc: subprocess.Popen[bytes] | None = None
    _started_at: float = 0.0
    _backoff_s: float = BACKOFF_FIRST_S

    def __post_init__(self) -> None:
        self.log_name = self.log_name or f"{self.name}.log"

    @property
    def label(self) -> str:
        return f"{self.name}#{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, base_env: dict[str, str], logs: Path) -> None:
        with (logs / self.log_name).open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv, env={**base_env, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )
        self._started_at = time.monotonic()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def wait_listening(self, logs: Path, timeout_s: float = 90.0) -> None:
        """Until it listens on its port; fails at once, naming its log, if it exits first."""
        try:
            wait_for_port(self.port, timeout_s, process=self._proc)
        except ExitedEarly as exc:
            raise ExitedEarly(f"{self.label} {exc}; see {logs / self.log_name}") from None

    def kill(self) -> None:
        """SIGKILL, as a crash would; a running supervisor restarts it."""
        if self.alive():
            assert self._proc is not None
            self._proc.kill()

    def terminate(self) -> None:
        if self.alive():
            assert self._proc is not None
            self._proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float) -> None:
        if self._proc is None:
            return
        try:
            self._proc.wait(max(timeout_s, 0.0))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        self.terminate()
        self.wait_stopped(timeout_s)

    def schedule_restart(self, now: float) -> float:
        """Set ``restart_at`` after an exit noticed at ``now``; answers the back-off."""
        if now - self._started_at >= STEADY_AFTER_S:
            self._backoff_s = BACKOFF_FIRST_S
        delay = self._backoff_s
        self._backoff_s = min(delay * 2, BACKOFF_MAX_S)
        self.restart_at = now + delay
        return delay


@dataclass
class Stack:
    root: Path
    nats: NatsServer | NatsCluster
    postgres: PostgresServer
    processes: list[Process] = field(default_factory=list)
    restarts: Counter[str] = field(default_factory=Counter)  # per service
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    @classmethod
    def prepare(cls, root: Path, cluster: bool = False, auth: bool = False) -> Stack:
        """The stack's servers (not started) under ``root``: one NATS node, or a 3-node
        JetStream cluster (its own store, so the two never share state). With ``auth``, NATS
        checks each service's permissions (deploy/nats/permissions.conf); clients without
        credentials (the chat, the CLIs, scripts) are the operator."""
        users = NatsAuth.generate(anonymous_user="operator") if auth else None
        for folder in ("logs", "postgres"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        nats: NatsServer | NatsCluster
        if cluster:
            nats = NatsCluster(size=3, root=root / "nats-cluster", auth=users)
        else:
            (root / "nats").mkdir(exist_ok=True)
            nats = NatsServer(store=root / "nats", port=preferred_port(4222), auth=users)
        return cls(root, nats, PostgresServer(root=root / "postgres", port=preferred_port(55432)))

    @property
    def replica_settings(self) -> dict[str, str]:
        """Streams and KV buckets on every NATS node (an operator's own values win)."""
        nodes = str(len(self.nats.nodes) if isinstance(self.nats, NatsCluster) else 1)
        return {"SB_STREAM_DEFAULT_REPLICAS": nodes, "SB_KV_REPLICAS": nodes}

    @property
    def env(self) -> dict[str, str]:
        return {**self.replica_settings, **os.environ, "NATS_URL": self.nats.url,
                "DATABASE_URL": self.postgres.url, "SWITCHBOARD_ENV": "development",
                "PYTHONUNBUFFERED": "1"}

    def nats_credentials(self, user: str) -> dict[str, str]:
        """A service's NATS user and password, when the server checks permissions."""
        auth = self.nats.auth
        return auth.client_env(user) if auth is not None else {}

    def add(self, name: str, argv: list[str], port: int, replicas: int = 1,
            **env: str) -> list[Process]:
        """``replicas`` processes of one service: the first on ``port``, each with its own
        ``HTTP_PORT``, ``SB_REPLICA`` (1, 2, ...) and log file."""
        added = []
        for replica in range(1, replicas + 1):
            own_port = port if replica == 1 else preferred_port(port + 100 * (replica - 1))
            log_name = f"{name}.log" if replicas == 1 else f"{name}-{replica}.log"
            added.append(Process(name, argv, own_port, {
                **env, "HTTP_PORT": str(own_port), "SB_REPLICA": str(replica),
            }, replica, log_name))
        self.processes.extend(added)
        return added

    def replicas(self, name: str) -> list[Process]:
        return [process for process in self.processes if process.name == name]

    def start_servers(self) -> None:
        self.nats.start()
        self.postgres.start()

    def start_processes(self) -> None:
        # Services do not wait for each other (each creates the streams it needs): start them
        # all, then wait until every one listens.
        for process in self.processes:
            process.start(self.env, self.root / "logs")
        for process in self.processes:
            process.wait_listening(self.root / "logs")

    # -- supervision -------------------------------------------------------------------------
    def supervise(self, should_stop: Callable[[], bool] = lambda: False,
                  poll_s: float = 0.2) -> None:
        """Restart every process that exits, until ``should_stop()`` or ``stop()``."""
        while not should_stop() and not self._stopping.is_set():
            self._tend(time.monotonic())
            self._stopping.wait(poll_s)

    def supervise_in_thread(self) -> None:
        self._supervisor = threading.Thread(target=self.supervise, name="stack-supervisor",
                                            daemon=True)
        self._supervisor.start()

    def _tend(self, now: float) -> None:
        for process in self.processes:
            if process.alive():
                continue
            if process.restart_at is None:
                delay = process.schedule_restart(now)
                print(f"!! {process.label} exited with {process.exit_code}; restarting in "
                      f"{delay:.1f} s (log: {self.root / 'logs' / process.log_name})", flush=True)
            elif now >= process.restart_at:
                process.restart_at = None
                process.start(self.env, self.root / "logs")
                self.restarts[process.name] += 1

    # -- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        """The supervisor, then every service (SIGTERM to all, each drains), then the servers
        they were using: a draining service can still ack and publish."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        for process in self.processes:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes:
            process.wait_stopped(deadline - time.monotonic())
        self.nats.stop()
        self.postgres.stop()
