"""The run's outcome: a printed summary and ``bench/results/chaos.json``."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .checks import Finding, silenced
from .facts import Facts
from .faults import Fault

# Every one of these must be 0 for the run to pass.
MUST_BE_ZERO = ("lag_not_zero", "lost", "double_replies", "double_sends", "unattributed_sends",
                "unrecorded_sends", "out_of_order", "unexpected_dead_letters",
                "poison_not_dead_lettered", "read_model_mismatches", "faults_not_recovered",
                "opted_out_violations", "human_mode_violations", "operator_reply_violations")
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "chaos.json"


@dataclass
class Outcome:
    settings: dict[str, Any]
    facts: Facts
    findings: list[Finding]
    faults: list[Fault]
    timings: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {finding.name: finding.count for finding in self.findings}
        counts["faults_not_recovered"] = sum(f.recovery_s is None for f in self.faults)
        return counts

    @property
    def passed(self) -> bool:
        counts = self.counts()
        return all(counts.get(name, 0) == 0 for name in MUST_BE_ZERO)

    def people(self) -> dict[str, int]:
        """How much of the load had people in the loop (ADR 0022)."""
        kinds = Counter(event.type for event in self.facts.people)
        given = Counter((a.command, a.accepted) for a in self.facts.operator_actions)
        return {"opt_outs": kinds["UserOptedOut"], "opt_ins": kinds["UserOptedIn"],
                "handoffs": kinds["HandoffRequested"], "releases": kinds["HandoffReleased"],
                "operator_replies": given[("reply", True)],
                "operator_commands": len(self.facts.operator_actions),
                "operator_commands_unanswered": sum(n for (_, ok), n in given.items()
                                                    if ok is None),
                "rightly_unanswered": len(silenced(self.facts))}

    def recovery_by_kind(self) -> dict[str, dict[str, float | int | None]]:
        times: defaultdict[str, list[float]] = defaultdict(list)
        kinds = {fault.kind for fault in self.faults}
        for fault in self.faults:
            if fault.recovery_s is not None:
                times[fault.kind].append(fault.recovery_s)
        return {kind: {"count": len(times[kind]),
                       "max": max(times[kind], default=None),
                       "mean": round(sum(times[kind]) / len(times[kind]), 2)
                       if times[kind] else None}
                for kind in sorted(kinds)}

    def as_json(self) -> dict[str, Any]:
        sent = self.facts.sent
        return {
            "messages": len({s.sid for s in sent if s.kind != "redelivery"}),
            "answered": len({s.sid for s in sent if s.status == 200}),
            "webhook_deliveries": len(sent),
            "refused": sum(s.status != 200 for s in sent),
            "api_sends": len(self.facts.api_sends),
            **self.people(),
            **self.counts(),
            "passed": self.passed,
            "faults": [asdict(fault) for fault in self.faults],
            "recovery_s": self.recovery_by_kind(),
            "restarts": self.restarts,
            "timings_s": self.timings,
            "examples": {f.name: f.examples for f in self.findings if f.examples},
            **self.settings,
        }

    def write(self, path: Path = RESULTS) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        return path

    def summary(self) -> str:
        data = self.as_json()
        lines = [f"chaos: {data['messages']} messages from {self.settings.get('users')} users "
                 f"({data['webhook_deliveries']} webhook deliveries, {data['answered']} "
                 f"answered 200), {data['api_sends']} Messages API sends, "
                 f"{data['opt_outs']} opt-outs, {data['handoffs']} handoffs, "
                 f"{data['operator_replies']} operator replies, "
                 f"{self.settings.get('nats_nodes')} NATS nodes, "
                 f"{self.settings.get('replicas')} replicas per service"]
        lines.append("faults:")
        for fault in self.faults:
            recovered = (f"recovered in {fault.recovery_s:.1f} s" if fault.recovery_s is not None
                         else "NOT RECOVERED")
            lines.append(f"  {fault.at_s:6.1f} s  {fault.kind:<17} {fault.target:<28} "
                         f"{recovered}  ({fault.detail})")
        lines.append("checks:")
        counts = self.counts()
        for name in MUST_BE_ZERO:
            mark = "ok  " if counts.get(name, 0) == 0 else "FAIL"
            lines.append(f"  {mark} {name}: {counts.get(name, 0)}")
        for name, count in counts.items():
            if name not in MUST_BE_ZERO:
                lines.append(f"  note {name}: {count}")
        for finding in self.findings:
            for example in finding.examples:
                lines.append(f"       {finding.name} e.g. {example}")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)
