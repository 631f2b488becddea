"""Write k8s/base/prometheusrule.yaml from the rule files in deploy/prometheus.

The rules live once, in RULE_FILES (loaded as-is by the docker compose Prometheus, see
prometheus.yml); the Kubernetes PrometheusRule wraps the same groups for the Prometheus
Operator.

    python deploy/prometheus/sync_prometheusrule.py          # rewrite the PrometheusRule
    python deploy/prometheus/sync_prometheusrule.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "prometheus"
# SLO recording rules and burn-rate alerts, the services' alerts, the platform's alerts.
RULE_FILES = ("slos.yml", "alerts.yml", "platform.yml")
TARGET = ROOT / "k8s" / "base" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/{slos,alerts,platform}.yml by
# deploy/prometheus/sync_prometheusrule.py. Edit those files and re-run the script; do not
# edit this file by hand.
#
# The Prometheus Operator only loads rules its Prometheus' ruleSelector matches. With
# kube-prometheus-stack that is the label release=<helm release> unless
# prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false: add the label in an overlay.
"""


def rule_files() -> list[Path]:
    return [HERE / name for name in RULE_FILES]


def render() -> str:
    groups = [g for path in rule_files() for g in yaml.safe_load(path.read_text())["groups"]]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "switchboard",
            "labels": {"app.kubernetes.io/part-of": "switchboard"},
        },
        "spec": {"groups": groups},
    }
    body: str = yaml.safe_dump(resource, sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run {Path(__file__).name}")
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
