"""``make run``: the whole stack on one machine, on embedded NATS and Postgres.

State lives under ``.run/`` (git-ignored) so a second ``make run`` keeps the conversations.
Each service runs as its own process, as in production, with its logs in ``.run/logs``.
Ctrl-C (or SIGTERM) stops the services gracefully, then the servers; nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .embedded import NatsServer, PostgresServer, free_port, wait_for_port


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
    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, base_env: dict[str, str], logs: Path) -> None:
        with (logs / f"{self.name}.log").open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv, env={**base_env, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass
class Stack:
    root: Path
    nats: NatsServer
    postgres: PostgresServer
    processes: list[Process] = field(default_factory=list)

    @classmethod
    def prepare(cls, root: Path) -> Stack:
        for folder in ("logs", "nats", "postgres"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        return cls(root, NatsServer(store=root / "nats", port=preferred_port(4222)),
                   PostgresServer(root=root / "postgres", port=preferred_port(55432)))

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "NATS_URL": self.nats.url, "DATABASE_URL": self.postgres.url,
                "SWITCHBOARD_ENV": "development", "PYTHONUNBUFFERED": "1"}

    def add(self, name: str, argv: list[str], port: int, **env: str) -> Process:
        process = Process(name, argv, port, dict(env))
        self.processes.append(process)
        return process

    def start_servers(self) -> None:
        self.nats.start()
        self.postgres.start()

    def start_processes(self) -> None:
        # Services do not wait for each other (each creates the streams it needs): start them
        # all, then wait until every one listens.
        for process in self.processes:
            process.start(self.env, self.root / "logs")
        for process in self.processes:
            wait_for_port(process.port, timeout_s=90)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.nats.stop()
        self.postgres.stop()

    def watch(self, should_stop: Callable[[], bool]) -> None:
        while not should_stop():
            for process in self.processes:
                if not process.alive():
                    print(f"!! {process.name} exited; see {self.root / 'logs' / process.name}.log")
                    return
            time.sleep(0.5)
