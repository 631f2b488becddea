"""promtool: the rule files are valid, prometheus.yml loads them, their unit tests pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from . import tools

PROMETHEUS = Path(__file__).resolve().parents[1] / "prometheus"
sys.path.insert(0, str(PROMETHEUS))
from sync_prometheusrule import rule_files  # noqa: E402


def _run(args: list[str], cwd: Path = PROMETHEUS) -> list[str]:
    run = subprocess.run([*tools.promtool(), *args], cwd=cwd, capture_output=True, text=True)
    if run.returncode == 0:
        return []
    return [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]


def check_rules() -> tuple[int, list[str]]:
    files = rule_files()
    problems = _run(["check", "rules", *map(str, files)])
    # The compose Prometheus' configuration names the same files (rule_files).
    problems += _run(["check", "config", "prometheus.yml"])
    return len(files), problems


def test_rules() -> tuple[int, list[str]]:
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    return len(tests), _run(["test", "rules", *(t.name for t in tests)], PROMETHEUS / "tests")
