"""Render every kustomization under k8s/ and validate each resource against its schema.

Built-in kinds: kubernetes-validate's schemas of KUBERNETES_VERSION, strict (an unknown field
is an error). Custom resources: the CRD schemas vendored in deploy/schemas/crds
(<group>/<kind>_<version>.json, see its README), strict at the top level too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml  # type: ignore[import-untyped]
from kubernetes_validate.utils import SchemaNotFoundError

from . import tools

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRD_SCHEMAS = ROOT / "deploy" / "schemas" / "crds"
# The oldest Kubernetes minor the manifests are meant for (a field added later would fail).
KUBERNETES_VERSION = "1.30.0"
# Kinds no schema exists for, by apiVersion/kind, each with the reason. Empty: every kind the
# manifests use has a vendored schema; add one here only with a reason.
SKIPPED_KINDS: dict[str, str] = {}


@dataclass(frozen=True)
class Rendered:
    source: str  # the kustomization's folder, relative to the repository
    text: str


def kustomizations() -> list[Path]:
    """Folders whose kustomization.yaml is a Kustomization (components are built through the
    overlays that use them)."""
    found = []
    for path in sorted(K8S.rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind", "Kustomization") == "Kustomization":
            found.append(path.parent)
    return found


def building_blocks() -> set[str]:
    """Kustomizations another one includes as a resource (k8s/base in the overlays): a
    finding about them is seen, in context, through the one that includes them."""
    included = set()
    for path in K8S.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(path.read_text()).get("resources", []):
            target = (path.parent / entry).resolve()
            if (target / "kustomization.yaml").exists():
                included.add(str(target.relative_to(ROOT)))
    return included


def render_all() -> tuple[list[Rendered], list[str]]:
    kubectl = tools.kubectl()
    rendered, problems = [], []
    for folder in kustomizations():
        name = str(folder.relative_to(ROOT))
        run = subprocess.run([*kubectl, "kustomize", str(folder)], capture_output=True,
                             text=True)
        if run.returncode != 0:
            problems.append(f"{name}: kustomize failed: {run.stderr.strip()}")
        else:
            rendered.append(Rendered(name, run.stdout))
    return rendered, problems


def resources(text: str) -> Iterator[dict[str, Any]]:
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and doc.get("kind"):
            yield doc


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    group, _, version = api_version.rpartition("/")
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not group or not path.exists():
        return None
    schema = json.loads(path.read_text())
    # The vendored schemas close every object but the root: close it too (strict).
    schema.setdefault("additionalProperties", False)
    return jsonschema.Draft7Validator(schema)


def validate(resource: dict[str, Any]) -> list[str]:
    """Problems of one resource; empty when it is valid."""
    api_version, kind = resource.get("apiVersion", ""), resource["kind"]
    if f"{api_version}/{kind}" in SKIPPED_KINDS:
        return []
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        return []
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '(root)'}: {error.message}"]
    except SchemaNotFoundError:
        pass
    validator = _crd_validator(api_version, kind)
    if validator is None:
        return [f"no schema for {api_version} {kind}: vendor its CRD schema under "
                f"deploy/schemas/crds (README there) or add it to SKIPPED_KINDS with a reason"]
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator.iter_errors(resource)]


def check(rendered: list[Rendered]) -> tuple[int, list[str]]:
    """(resources validated, problems) over every rendered kustomization."""
    count, problems = 0, []
    for item in rendered:
        for resource in resources(item.text):
            count += 1
            name = resource.get("metadata", {}).get("name", "?")
            problems += [f"{item.source}: {resource['kind']}/{name}: {p}"
                         for p in validate(resource)]
    return count, problems
