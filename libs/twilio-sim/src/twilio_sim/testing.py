"""Run the simulator inside a test or a script.

    with run_simulator(SimConfig(accounts=[...], numbers=[...])) as sim:
        client = Client(sid, token, http_client=simulator_http_client(sim.url))

It serves on its own thread and event loop, so async tests calling it with async clients and
receiving its webhooks on their own loop do not block each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from switchboard_devstack.serving import serve_in_thread

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
    with serve_in_thread(app, host=host, port=port) as url:
        if config.public_url is None:
            config.public_url = url
        if cdn_host is not None:
            config.cdn_base_url = f"http://{cdn_host}:{url.rsplit(':', 1)[1]}"
        yield RunningSimulator(url, config)
