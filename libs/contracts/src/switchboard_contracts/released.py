"""The released schemas of the public contracts, kept in the repo, and the check against them.

``libs/contracts/schemas/released/<Type>.v<major>.json`` holds the schema of each public event
(and of the envelope) as last released for that major version. ``check`` refuses a current
schema that breaks its release (``compatibility``), a change without a version bump, a public
event that was never released, and a released one that disappeared. ``release`` records the
current schemas, refusing a breaking change within a major, so the check stays exact.

Retiring a public contract on purpose means deleting its snapshot: a reviewed change to a
folder that every service team owns (CODEOWNERS).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue import contracts
from .compatibility import breaking_changes, same_contract
from .deadletter import DeadLetter
from .envelope import Envelope, major_of
from .registry import Registry, registry

RELEASED = Path(__file__).resolve().parents[2] / "schemas" / "released"
# The envelope and the dead-letter record (read by the projection and the dead-letter CLI)
# carry no version on the wire: their versions live here, bumped like an event's.
ENVELOPE_VERSION = "1.0"
DEAD_LETTER_VERSION = "1.0"
HINT = "python tools/contracts.py release"


@dataclass(frozen=True, slots=True)
class PublicSchema:
    name: str
    version: str
    schema: dict[str, Any]

    @property
    def major(self) -> int:
        return major_of(self.version)

    def path(self, folder: Path) -> Path:
        return folder / f"{self.name}.v{self.major}.json"

    def to_text(self) -> str:
        body = {"type": self.name, "version": self.version, "schema": self.schema}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def public_schemas(source: Registry = registry) -> list[PublicSchema]:
    """The envelope, the dead-letter record and every public event's payload, as JSON
    Schemas."""
    found = [PublicSchema("Envelope", ENVELOPE_VERSION, Envelope.model_json_schema()),
             PublicSchema("DeadLetter", DEAD_LETTER_VERSION, DeadLetter.model_json_schema())]
    found += [PublicSchema(c.name, c.model.VERSION, c.model.model_json_schema())
              for c in contracts(source) if c.public]
    return found


def _load(path: Path) -> PublicSchema:
    body = json.loads(path.read_text())
    return PublicSchema(body["type"], body["version"], body["schema"])


def _released(folder: Path) -> dict[str, list[PublicSchema]]:
    """Released schemas by name, oldest major first."""
    by_name: dict[str, list[PublicSchema]] = {}
    for path in sorted(folder.glob("*.v*.json")):
        snapshot = _load(path)
        by_name.setdefault(snapshot.name, []).append(snapshot)
    for snapshots in by_name.values():
        snapshots.sort(key=lambda s: s.major)
    return by_name


@dataclass(frozen=True, slots=True)
class Problem:
    text: str
    # Whether recording the current schemas (``release``) is the fix; otherwise the change
    # itself must be undone, or made under a new major version.
    fixed_by_release: bool = False


def check(current: Iterable[PublicSchema], folder: Path = RELEASED) -> list[Problem]:
    """Every way ``current`` departs from the released schemas; empty when all is well."""
    released = _released(folder)
    problems: list[Problem] = []
    names = set()
    for schema in current:
        names.add(schema.name)
        history = released.get(schema.name, [])
        latest = history[-1] if history else None
        if latest is None:
            problems.append(Problem(f"{schema.name} v{schema.major} is public but not "
                                    f"released: run `{HINT}`", fixed_by_release=True))
        elif latest.major > schema.major:
            problems.append(Problem(f"{schema.name}: version {schema.version} is older than "
                                    f"the released {latest.version}"))
        elif latest.major < schema.major:
            problems.append(Problem(f"{schema.name} v{schema.major} is a new major: run "
                                    f"`{HINT}`", fixed_by_release=True))
        else:
            problems += _against(latest, schema)
    for name in sorted(set(released) - names):
        problems.append(Problem(f"{name} was released but is no longer a public event "
                                "(delete its snapshots to retire it on purpose)"))
    return problems


def _against(latest: PublicSchema, schema: PublicSchema) -> list[Problem]:
    breaking = breaking_changes(latest.schema, schema.schema)
    if breaking:
        return [Problem(f"{schema.name} v{schema.major}: {problem} (a breaking change needs a "
                        "new major version)") for problem in breaking]
    if same_contract(latest.schema, schema.schema):
        return []
    if schema.version == latest.version:
        return [Problem(f"{schema.name}: the schema changed but its version is still "
                        f"{schema.version}: bump the minor version")]
    return [Problem(f"{schema.name} {schema.version} is not released yet: run `{HINT}`",
                    fixed_by_release=True)]


def release(current: Iterable[PublicSchema], folder: Path = RELEASED) -> list[Path]:
    """Record ``current`` as released; the files written. Refuses what a release cannot fix."""
    current = list(current)
    refused = [p.text for p in check(current, folder) if not p.fixed_by_release]
    if refused:
        raise ValueError("\n".join(refused))
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for schema in current:
        path = schema.path(folder)
        if not path.exists() or path.read_text() != schema.to_text():
            path.write_text(schema.to_text())
            written.append(path)
    return written
