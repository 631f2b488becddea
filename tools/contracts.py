"""The event contracts' documents and released schemas, for people and for ``make lint``.

    python tools/contracts.py generate          # write docs/events.md and docs/asyncapi.yaml
    python tools/contracts.py generate --check  # exit 1 if either is out of date
    python tools/contracts.py compat            # exit 1 on a breaking change to a public event
    python tools/contracts.py release           # record today's public schemas as released
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contract_docs import render_asyncapi, render_markdown
from switchboard_contracts.released import check, public_schemas, release

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = {
    ROOT / "docs" / "events.md": render_markdown,
    ROOT / "docs" / "asyncapi.yaml": render_asyncapi,
}


def generate(check_only: bool) -> int:
    stale = []
    for path, render in DOCUMENTS.items():
        text = render()
        if path.exists() and path.read_text() == text:
            continue
        if check_only:
            stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"{path} is out of date: run `python tools/contracts.py generate`")
    return 1 if stale else 0


def compat() -> int:
    problems = check(public_schemas())
    for problem in problems:
        print(problem.text)
    return 1 if problems else 0


def record() -> int:
    try:
        written = release(public_schemas())
    except ValueError as refused:
        print(refused)
        return 1
    for path in written:
        print(f"released {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate").add_argument("--check", action="store_true")
    commands.add_parser("compat")
    commands.add_parser("release")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return generate(args.check)
    return compat() if args.command == "compat" else record()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
