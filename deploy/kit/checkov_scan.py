"""checkov on the rendered kustomizations, with the reviewed skip list deploy/checkov-skips.yml.

checkov runs once on all of them (its start-up is most of its time); the skips are applied
here, per kustomization and resource, which checkov's own --skip-check cannot do.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from . import tools
from .manifests import Rendered, building_blocks

SKIPS = Path(__file__).resolve().parents[1] / "checkov-skips.yml"


@dataclass
class Skip:
    id: str
    reason: str
    sources: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    used: bool = False

    def covers(self, check_id: str, source: str, resource: str) -> bool:
        # checkov names a resource Kind.namespace.name; entries name it Kind.name.
        kind, _, rest = resource.partition(".")
        short = f"{kind}.{rest.rpartition('.')[2]}"
        return (check_id == self.id and (not self.sources or source in self.sources)
                and (not self.resources or short in self.resources))


def load_skips() -> list[Skip]:
    entries = yaml.safe_load(SKIPS.read_text())["skips"]
    skips = [Skip(**entry) for entry in entries]
    for skip in skips:
        if not skip.reason.strip():
            raise ValueError(f"{SKIPS.name}: {skip.id} has no reason")
    return skips


def scan(rendered: list[Rendered]) -> tuple[int, list[str]]:
    """(checks passed, findings not covered by a skip, and skips that matched nothing), over
    the kustomizations one applies (not the building blocks they include)."""
    skips = load_skips()
    blocks = building_blocks()
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for item in (r for r in rendered if r.source not in blocks):
            name = item.source.replace("/", "__") + ".yaml"
            (Path(tmp) / name).write_text(item.text)
            files[f"/{name}"] = item.source
        run = subprocess.run(
            [*tools.uv_tool(tools.CHECKOV, "checkov"), "--directory", tmp,
             "--framework", "kubernetes", "--output", "json", "--quiet", "--skip-download"],
            capture_output=True, text=True)
    try:
        report: dict[str, Any] = json.loads(run.stdout)
    except json.JSONDecodeError:
        return 0, [f"checkov did not run (exit {run.returncode}): {run.stderr.strip()[-500:]}"]
    problems = []
    for failed in report["results"]["failed_checks"]:
        source = files.get(failed["file_path"], failed["file_path"])
        matching = [s for s in skips if s.covers(failed["check_id"], source, failed["resource"])]
        for skip in matching:
            skip.used = True
        if not matching:
            problems.append(f"{source}: {failed['resource']}: {failed['check_id']} "
                            f"{failed['check_name']}")
    problems += [f"{SKIPS.name}: {s.id} ({', '.join(s.resources or s.sources) or 'all'}) "
                 "matches no finding any more: remove it" for s in skips if not s.used]
    return int(report["summary"]["passed"]), problems
