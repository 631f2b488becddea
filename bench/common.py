"""What every benchmark shares: the result record, printing it, writing bench/results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass
class Result:
    name: str
    metric: str
    ours: float
    baseline: float
    goal: str
    conditions: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    def report(self) -> None:
        record = {**asdict(self), "ratio": round(self.ratio, 3)}
        record["conditions"] = {**self.conditions, "cpus": os.cpu_count(),
                                "python": platform.python_version()}
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{self.name}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"\n== {self.name}: {self.metric}")
        print(f"   ours      {self.ours:12.1f}")
        print(f"   baseline  {self.baseline:12.1f}")
        print(f"   ratio     {self.ratio:12.3f}   (goal: {self.goal})")
        for key, value in self.extra.items():
            print(f"   {key}: {value}")
        print(f"   written to {RESULTS / (self.name + '.json')}")


def median(values: list[float]) -> float:
    return statistics.median(values)
