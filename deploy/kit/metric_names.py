"""Every metric the dashboards and the rules query exists: in the code, or in an exporter.

The names the code defines come from the prometheus_client declarations in libs/ and
services/ (read as text: importing every service would need all their dependencies), expanded
the way prometheus_client exposes them. PromQL is not parsed fully: label matchers, strings,
grouping clauses, durations and Grafana variables are removed, and the identifiers left that
are not functions or keywords are metric names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus"
SOURCES = ("libs", "services")

_DECLARATION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']"
)
_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}
# Metrics of other exporters the rules and dashboards may query, by prefix: Prometheus
# itself, kube-state-metrics and the kubelet, the NATS exporter, CloudNativePG, KEDA, the
# OpenTelemetry Collector, and prometheus_client's process and Python collectors.
EXTERNAL_PREFIXES = ("up", "scrape_", "kube_", "kubelet_", "container_", "nats_", "cnpg_",
                     "keda_", "otelcol_", "process_", "python_")
_NOT_METRICS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                "group_right", "bool", "offset", "inf", "nan", "atan2", "start", "end"}
_STRIPS = (
    re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'),  # strings
    re.compile(r"\{[^{}]*\}"),  # label matchers
    re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"),
    re.compile(r"\[[^\]]*\]"),  # range and subquery durations
    re.compile(r"\$\{[^}]*\}|\$\w+"),  # Grafana variables
)
# A whole identifier (no backtracking into a shorter one) not followed by "(": not a call.
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_NUMBER_UNIT = re.compile(r"^\d")


def defined_metrics() -> set[str]:
    names: set[str] = set()
    for top in SOURCES:
        for path in (ROOT / top).glob("*/src/**/*.py"):
            for kind, name in _DECLARATION.findall(path.read_text()):
                base = name.removesuffix("_total") if kind == "Counter" else name
                names.update(base + suffix for suffix in _SUFFIXES[kind])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (those without a name, like
    {__name__=~"..."}, are not seen)."""
    text = expr
    for pattern in _STRIPS:
        previous = None
        while previous != text:  # nested matchers and groupings
            previous, text = text, pattern.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text)
            if name.lower() not in _NOT_METRICS and not _NUMBER_UNIT.match(name)}


def _dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):  # a panel target's PromQL
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def queries() -> tuple[list[tuple[str, str]], set[str], list[str]]:
    """(where, expression) of every query, the recorded series names, and parse problems."""
    found, recorded, problems = [], set(), []
    for path in sorted(DASHBOARDS.glob("*.json")):
        where = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not JSON: {error}")
            continue
        found += [(where, expr) for expr in _dashboard_exprs(dashboard)]
    for path in sorted(RULES.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        if not isinstance(document, dict) or "groups" not in document:
            continue  # prometheus.yml
        for group in document["groups"]:
            for rule in group["rules"]:
                found.append((f"{path.relative_to(ROOT)}: {rule.get('alert') or rule['record']}",
                              rule["expr"]))
                if "record" in rule:
                    recorded.add(rule["record"])
    return found, recorded, problems


def check() -> tuple[int, list[str]]:
    """(queries checked, problems): names neither defined by the code, recorded by a rule,
    nor of a known exporter."""
    known = defined_metrics()
    found, recorded, problems = queries()
    for where, expr in found:
        for name in sorted(metric_names(expr) - known - recorded):
            if name.startswith("switchboard_") or not name.startswith(EXTERNAL_PREFIXES):
                problems.append(f"{where}: {name} is not a metric the code defines")
    return len(found), problems
