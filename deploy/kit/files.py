"""docker-compose.yml against the Compose Specification, the Dockerfile with hadolint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import yaml  # type: ignore[import-untyped]

from . import tools

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "deploy" / "schemas" / "compose" / "compose-spec.json"
DOCKERFILES = (ROOT / "services" / "Dockerfile",)


def check_compose() -> tuple[int, list[str]]:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    compose = yaml.safe_load(COMPOSE.read_text())
    problems = [f"{COMPOSE.name}: {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in validator.iter_errors(compose)]
    return len(compose.get("services", {})), problems


def check_dockerfiles() -> tuple[int, list[str]]:
    hadolint = tools.venv_tool("hadolint")
    run = subprocess.run([*hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True)
    problems = [] if run.returncode == 0 else (run.stdout + run.stderr).strip().splitlines()
    return len(DOCKERFILES), problems
