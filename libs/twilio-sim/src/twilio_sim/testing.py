"""Run the simulator inside a test or a script.

    with run_simulator(SimConfig(accounts=[...], numbers=[...])) as sim:
        client = Client(sid, token, http_client=simulator_http_client(sim.url))

It serves on its own thread and event loop, so async tests calling it with async clients and
receiving its webhooks on their own loop do not block each other.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .client import SimClient
from .config import SimConfig


@dataclass(frozen=True)
class RunningSimulator:
    url: str
    config: SimConfig

    def client(self) -> SimClient:
        """A new admin client; close it (``async with``) when done."""
        return SimClient(self.url)


@contextmanager
def serve_app(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0,
              startup_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a thread until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=1,
    ))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def run_simulator(
    config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
    cdn_host: str | None = None,
) -> Iterator[RunningSimulator]:
    """Serve the simulator on a free port (or ``port``) until the block ends.

    Media URLs use the served URL unless ``config.public_url`` is set. ``cdn_host`` (e.g.
    ``"localhost"``) puts the media redirects on another host name for this server, which then
    refuses credentials there, as a media client must not send them across hosts.
    """
    # A copy: the URLs filled in below belong to this run, not to the caller's config.
    config = config.model_copy(deep=True) if config else SimConfig()
    app = create_app(config)
    with serve_app(app, host=host, port=port) as url:
        if config.public_url is None:
            config.public_url = url
        if cdn_host is not None:
            config.cdn_base_url = f"http://{cdn_host}:{url.rsplit(':', 1)[1]}"
        yield RunningSimulator(url, config)
