"""The embedded servers the tests and `make run` start."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from switchboard_devstack.embedded import NatsServer, PostgresServer


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


def test_a_new_postgres_folder_does_not_inherit_a_deleted_ones_cluster(tmp_path: Path) -> None:
    root = tmp_path / "pg"
    first = PostgresServer(root=root)
    if first.home == root:
        pytest.skip("the cluster lives in its folder: nothing is left elsewhere")
    (first.home / "data").mkdir()  # as a cluster from an earlier `make run` would be
    shutil.rmtree(root)  # the person deletes .run/
    second = PostgresServer(root=root)
    try:
        assert second.home == first.home
        assert not (second.home / "data").exists()
        (second.home / "data").mkdir()
        assert (PostgresServer(root=root).home / "data").exists()  # kept while its root lives
    finally:
        second.cleanup()
