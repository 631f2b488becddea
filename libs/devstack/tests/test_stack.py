"""The supervisor of the local stack: it restarts what dies, and stops in order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from switchboard_devstack import stack as stack_module
from switchboard_devstack.embedded import ExitedEarly, free_port, wait_for_port
from switchboard_devstack.stack import Stack
from switchboard_devstack.waiting import eventually_sync

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration


# A service that listens on its HTTP_PORT; on SIGTERM it drains a moment, then writes whether
# NATS and Postgres still answered at the end of its drain.
DUMMY_SERVICE = """
import os, signal, socket, sys, time, urllib.parse

def reachable(url):
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False

def drain(*_):
    time.sleep(0.3)  # the in-flight work a real service finishes before it exits
    with open(sys.argv[1], "w") as out:
        out.write(f"nats={reachable(os.environ['NATS_URL'])} "
                  f"postgres={reachable(os.environ['DATABASE_URL'])}")
    sys.exit(0)

signal.signal(signal.SIGTERM, drain)
server = socket.create_server(("127.0.0.1", int(os.environ["HTTP_PORT"])))
while True:
    time.sleep(1)
"""


def test_a_killed_replica_is_restarted_with_a_new_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    stack = Stack.prepare(tmp_path)
    port = free_port()
    first, second = stack.add("dummy", [sys.executable, "-c", DUMMY_SERVICE,
                                        str(tmp_path / "report")], port, replicas=2)
    stack.start_processes()
    stack.supervise_in_thread()
    try:
        assert first.port != second.port and first.pid != second.pid
        killed, untouched = second.pid, first.pid
        second.kill()
        eventually_sync(lambda: second.alive() and second.pid != killed,
                        what="the killed replica restarted")
        wait_for_port(second.port)
        assert first.pid == untouched
        assert stack.restarts["dummy"] == 1
        assert stack.replicas("dummy") == [first, second]
    finally:
        stack.stop()
    assert "!! dummy#2 exited with -9; restarting in 0.5 s" in capsys.readouterr().out
    assert (tmp_path / "logs" / "dummy-1.log").exists()
    assert (tmp_path / "logs" / "dummy-2.log").exists()


def _supervise_a_crashing_process(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  restarts: int) -> list[str]:
    """The supervisor's lines while a process that exits at once is restarted ``restarts``
    times."""
    stack = Stack.prepare(tmp_path)
    [crashing] = stack.add("crashing", [sys.executable, "-c", "raise SystemExit(3)"],
                           free_port())
    crashing.start(stack.env, tmp_path / "logs")
    stack.supervise_in_thread()
    try:
        eventually_sync(lambda: stack.restarts["crashing"] >= restarts,
                        what=f"{restarts} restarts")
    finally:
        stack.stop()
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("!!")]


def test_a_process_that_keeps_crashing_is_restarted_ever_more_slowly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    lines = _supervise_a_crashing_process(tmp_path, capsys, restarts=3)
    assert lines[:3] == [
        f"!! crashing#1 exited with {code}; restarting in {delay} s "
        f"(log: {tmp_path / 'logs' / 'crashing.log'})"
        for code, delay in ((3, "0.5"), (3, "1.0"), (3, "2.0"))
    ]


def test_the_back_off_starts_again_after_a_process_stayed_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stack_module, "STEADY_AFTER_S", 0.0)  # every run counts as steady
    lines = _supervise_a_crashing_process(tmp_path, capsys, restarts=2)
    assert all("restarting in 0.5 s" in line for line in lines)


def test_a_service_that_exits_while_starting_is_reported_at_once(tmp_path: Path) -> None:
    stack = Stack.prepare(tmp_path)
    stack.add("broken", [sys.executable, "-c", "raise SystemExit(2)"], free_port())
    try:
        with pytest.raises(ExitedEarly, match=r"broken#1 exited with 2 .*broken\.log"):
            stack.start_processes()
    finally:
        stack.stop()


def test_services_stop_and_drain_before_nats_and_postgres_stop(tmp_path: Path) -> None:
    stack = Stack.prepare(tmp_path)
    stack.start_servers()
    report = tmp_path / "seen-at-sigterm"
    port = free_port()
    stack.add("dummy", [sys.executable, "-c", DUMMY_SERVICE, str(report)], port)
    try:
        stack.start_processes()
    finally:
        stack.stop()
    assert report.read_text() == "nats=True postgres=True"
    assert not stack.nats.alive()
