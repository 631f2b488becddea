"""The embedded servers the tests and `make run` start."""

from __future__ import annotations

import socket

from switchboard_devstack.embedded import NatsServer


def test_a_nats_server_whose_free_port_was_taken_meanwhile_starts_on_another() -> None:
    with socket.socket() as taken:  # bound, not listening: only the server's bind fails
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        server = NatsServer(port=port)
        try:
            server.start()
            assert server.port != port
            with socket.create_connection(("127.0.0.1", server.port), timeout=2):
                pass
        finally:
            server.cleanup()
