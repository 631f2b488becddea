"""The pod stop, the drain and the handler steps agree: in the settings, and as the k8s
manifests set them (ADR 0012).

kubectl may not be installed: the base and each overlay are read as YAML, and the overlays'
ConfigMap merges applied, which is all these manifests use for the settings checked here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent.settings import AgentSettings
from sender.settings import SenderSettings
from switchboard_runtime.config import ConfigError, ServiceSettings

K8S = Path(__file__).resolve().parents[1] / "k8s"
# The settings class of each Deployment that declares handler steps the drain must outlast.
SETTINGS: dict[str, type[ServiceSettings]] = {"switchboard-agent": AgentSettings,
                                               "switchboard-sender": SenderSettings}


def _documents(folder: Path) -> Iterator[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    for resource in kustomization.get("resources", []):
        path = folder / resource
        if path.is_dir():
            yield from _documents(path)
        else:
            yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def _config_maps(folder: Path) -> dict[str, dict[str, str]]:
    """Literals of each generated ConfigMap, the overlay's merged over the base's."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    maps: dict[str, dict[str, str]] = {}
    for resource in kustomization.get("resources", []):
        if (folder / resource / "kustomization.yaml").exists():
            for name, literals in _config_maps(folder / resource).items():
                maps.setdefault(name, {}).update(literals)
    for generator in kustomization.get("configMapGenerator", []):
        literals = dict(item.split("=", 1) for item in generator.get("literals", []))
        maps.setdefault(generator["name"], {}).update(literals)
    return maps


def _rendered(overlay: Path) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(name, pod spec, environment of its first container) of each Deployment."""
    maps = _config_maps(overlay)
    found = []
    for doc in _documents(overlay):
        if doc.get("kind") != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(maps.get(source.get("configMapRef", {}).get("name", ""), {}))
        env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
        found.append((doc["metadata"]["name"], pod, env))
    return found


def _pre_stop_s(pod: dict[str, Any]) -> float:
    command = pod["containers"][0].get("lifecycle", {}).get("preStop", {}).get("exec", {})
    argv = command.get("command", [])
    return float(argv[1]) if argv[:1] == ["sleep"] else 0.0


# The Deployments that run a service, which drains on SIGTERM (not the admin shell).
SERVICES = {f"switchboard-{name}" for name in (
    "gateway", "conversation", "agent", "sender", "transcription", "projection")}
OVERLAYS = [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_grace_period_covers_the_pre_stop_and_the_drain(overlay: Path) -> None:
    deployments = [d for d in _rendered(overlay) if d[0] in SERVICES]
    assert {name for name, _, _ in deployments} == SERVICES
    for name, pod, env in deployments:
        drain = float(env.get("DRAIN_TIMEOUT_S", ServiceSettings.model_fields[
            "drain_timeout_s"].default))
        grace = float(pod.get("terminationGracePeriodSeconds", 30))
        assert grace > _pre_stop_s(pod) + drain, f"{overlay.name}/{name}"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_drain_outlasts_every_handler_step_the_manifests_set(overlay: Path) -> None:
    checked = 0
    for name, _, env in _rendered(overlay):
        settings = SETTINGS.get(name)
        if settings is None:
            continue
        drain = float(env.get("DRAIN_TIMEOUT_S", settings.model_fields["drain_timeout_s"].default))
        for field in settings.OUTLASTED_BY_DRAIN:
            step = float(env.get(field.upper(), settings.model_fields[field].default))
            assert step < drain, f"{overlay.name}/{name}: {field.upper()} {step} >= {drain}"
            checked += 1
    # Every step of every such Deployment was checked (each is in the render).
    assert checked == sum(len(s.OUTLASTED_BY_DRAIN) for s in SETTINGS.values())


def test_the_agent_refuses_an_llm_timeout_the_drain_would_cut(monkeypatch) -> None:
    monkeypatch.setenv("DRAIN_TIMEOUT_S", "25")
    monkeypatch.setenv("LLM_TIMEOUT_S", "25")
    with pytest.raises(ConfigError, match=r"LLM_TIMEOUT_S .* DRAIN_TIMEOUT_S"):
        AgentSettings()
    monkeypatch.setenv("LLM_TIMEOUT_S", "24.5")
    assert AgentSettings().llm_timeout_s == 24.5


def test_the_defaults_agree() -> None:
    settings = AgentSettings()
    assert settings.llm_timeout_s < settings.drain_timeout_s
