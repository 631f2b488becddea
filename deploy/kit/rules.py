"""promtool: the rule files are valid, prometheus.yml loads them, their unit tests pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml  # type: ignore[import-untyped, unused-ignore]

from . import tools

PROMETHEUS = Path(__file__).resolve().parents[1] / "prometheus"
sys.path.insert(0, str(PROMETHEUS))
from sync_prometheusrule import rule_files  # noqa: E402


def _run(args: list[str], cwd: Path = PROMETHEUS) -> list[str]:
    run = subprocess.run([*tools.promtool(), *args], cwd=cwd, capture_output=True, text=True)
    if run.returncode == 0:
        return []
    return [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]


SEVERITIES = {"critical", "warning"}
# An aggregation and its grouping; one without `by` drops the namespace.
_AGGREGATION = re.compile(r"\b(sum|min|max|avg|count|stddev|topk|bottomk|quantile)\s*"
                          r"(?:by\s*\(([^)]*)\))?\s*\(")


def lint(path: Path) -> list[str]:
    """What promtool does not check: every alert has a severity, a summary and a one-line
    runbook, and every aggregation in a rule keeps the namespace (one deployment)."""
    problems = []
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            where = f"{path.name}: {name}"
            for kind, grouping in _AGGREGATION.findall(rule["expr"]):
                if "namespace" not in grouping.replace(" ", "").split(","):
                    problems.append(f"{where}: {kind} without `by (namespace, ...)`")
            if "alert" not in rule:
                continue
            if rule.get("labels", {}).get("severity") not in SEVERITIES:
                problems.append(f"{where}: severity label not one of {sorted(SEVERITIES)}")
            annotations = rule.get("annotations", {})
            for key in ("summary", "runbook"):
                if not annotations.get(key, "").strip():
                    problems.append(f"{where}: no {key} annotation")
            if "\n" in annotations.get("runbook", "").strip():
                problems.append(f"{where}: the runbook is more than one line")
    return problems


def check_rules() -> tuple[int, list[str]]:
    files = rule_files()
    problems = [p for path in files for p in lint(path)]
    problems += _run(["check", "rules", *map(str, files)])
    # The compose Prometheus' configuration names the same files (rule_files).
    problems += _run(["check", "config", "prometheus.yml"])
    return len(files), problems


def test_rules() -> tuple[int, list[str]]:
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    return len(tests), _run(["test", "rules", *(t.name for t in tests)], PROMETHEUS / "tests")
