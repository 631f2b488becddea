"""Check what the rendered manifests promise an SRE, beyond schema validity.

Reads the renders of the overlays (YAML files named on the command line, the output of
``kubectl kustomize``; k8s/check.sh passes them) and exits 1 naming every broken promise:

- every pod template meets Pod Security "restricted" (the namespace enforces it);
- every Switchboard workload runs as its own ServiceAccount, without an API token;
- the namespace denies all traffic, in and out, unless a policy allows it;
- the services export traces to the collector and reach NATS over TLS;
- every KEDA ScaledObject has a fallback;
- in a render with a digest on any image (prod), every image is pinned by digest and every
  Switchboard pod carries the release's source and revision.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

Manifest = dict[str, Any]

ALLOWED_VOLUMES = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected",
                   "downwardAPI", "csi", "ephemeral"}
OCI_ANNOTATIONS = ("org.opencontainers.image.source", "org.opencontainers.image.revision")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def is_switchboard(doc: Manifest) -> bool:
    labels: dict[str, str] = doc["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/part-of") == "switchboard"


def pod_problems(spec: Manifest) -> Iterator[str]:
    """Pod Security "restricted", the checks that apply to what these manifests set."""
    pod = spec.get("securityContext", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        own = container.get("securityContext", {})
        name = container["name"]
        if not (own.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            yield f"{name}: runAsNonRoot is not true"
        if own.get("runAsUser", pod.get("runAsUser")) == 0:
            yield f"{name}: runs as UID 0"
        seccomp = own.get("seccompProfile") or pod.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            yield f"{name}: no RuntimeDefault seccomp profile"
        if own.get("allowPrivilegeEscalation") is not False:
            yield f"{name}: allowPrivilegeEscalation is not false"
        if "ALL" not in own.get("capabilities", {}).get("drop", []):
            yield f"{name}: capabilities do not drop ALL"
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            yield f"volume {volume['name']}: {sorted(kinds - ALLOWED_VOLUMES)} not allowed"
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        yield "shares a host namespace"


def check_render(docs: list[Manifest]) -> Iterator[str]:
    by_kind: dict[str, dict[str, Manifest]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    workloads = [doc for kind in WORKLOADS for doc in by_kind.get(kind, {}).values()]
    accounts = by_kind.get("ServiceAccount", {})
    pinned = any("@sha256:" in c["image"] for w in workloads
                 for c in w["spec"]["template"]["spec"]["containers"])

    for workload in workloads:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        template = workload["spec"]["template"]
        spec = template["spec"]
        for problem in pod_problems(spec):
            yield f"{where}: {problem}"
        if pinned:
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                if "@sha256:" not in container["image"]:
                    yield f"{where}: image {container['image']} is not pinned by digest"
        if not is_switchboard(workload):
            continue
        account = spec.get("serviceAccountName")
        if account != workload["metadata"]["name"]:
            yield f"{where}: runs as ServiceAccount {account!r}, not its own"
        elif accounts.get(account, {}).get("automountServiceAccountToken") is not False:
            yield f"{where}: ServiceAccount {account} mounts an API token"
        if spec.get("automountServiceAccountToken") is not False:
            yield f"{where}: the pod mounts an API token"
        if pinned:
            annotations = template["metadata"].get("annotations", {})
            for key in OCI_ANNOTATIONS:
                if key not in annotations:
                    yield f"{where}: no {key} annotation on its pods"

    deny = by_kind.get("NetworkPolicy", {}).get("default-deny-all")
    if (deny is None or deny["spec"]["podSelector"] != {}
            or sorted(deny["spec"]["policyTypes"]) != ["Egress", "Ingress"]
            or deny["spec"].get("ingress") or deny["spec"].get("egress")):
        yield "NetworkPolicy default-deny-all does not deny every pod both ways"

    settings: dict[str, str] = next(
        (cm["data"] for name, cm in by_kind.get("ConfigMap", {}).items()
         if name.startswith("switchboard-config")), {})
    if settings.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector:4317":
        yield "switchboard-config: OTEL_EXPORTER_OTLP_ENDPOINT is not the collector"
    if not settings.get("NATS_URL", "").startswith("tls://"):
        yield "switchboard-config: NATS_URL is not tls://"

    for name, scaled in by_kind.get("ScaledObject", {}).items():
        fallback = scaled["spec"].get("fallback", {})
        if not (fallback.get("failureThreshold") and fallback.get("replicas")):
            yield f"ScaledObject/{name}: no fallback"


def main(paths: list[str]) -> int:
    failures = 0
    for path in paths:
        docs = [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]
        for problem in check_render(docs):
            failures += 1
            print(f"{path}: {problem}")
    print(f"{len(paths)} render(s) checked, {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
