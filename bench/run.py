"""``python -m bench.run [NAME ...]``: run the named benchmarks (all when none is named)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent
SKIP = {"__init__", "common", "run"}


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SKIP)


def main(names: list[str]) -> int:
    names = names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}")
        return 2
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        result = asyncio.run(module.main())
        result.report()
    return 0


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if a]))
