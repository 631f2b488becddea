"""``Handlers.on`` lets mypy check the wiring: a handler for another event type is an error.

mypy runs once for the module, on two snippets (a mismatched registration and right ones), in
process and with the repository's incremental cache, so a warm run takes a few seconds.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_runtime.bus.handlers import Handlers

# Runs mypy in a subprocess (seconds): not the in-process unit tier.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]

IMPORTS = """\
from switchboard_contracts import Event
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed
from switchboard_runtime.bus.handlers import Handlers


async def on_reply(event: Event[ReplyGenerated]) -> None: ...


async def on_transcript(
    event: Event[TranscriptionCompleted] | Event[TranscriptionFailed],
) -> None: ...
"""

MISMATCHED = IMPORTS + """
Handlers().on(InboundMessageReceived, on_reply)
"""

RIGHT = IMPORTS + """
(Handlers()
 .on(ReplyGenerated, on_reply)
 .on(TranscriptionCompleted, on_transcript)
 .on(TranscriptionFailed, on_transcript))
"""


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """mypy's output lines, by snippet name."""
    folder = tmp_path_factory.mktemp("wiring")
    snippets = {"mismatched": MISMATCHED, "right": RIGHT}
    for name, text in snippets.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    stdout, stderr, _ = mypy_api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"),
        "--no-error-summary",
        *(str(folder / f"{name}.py") for name in snippets),
    ])
    assert not stderr, stderr
    lines = stdout.splitlines()
    return {name: "\n".join(line for line in lines if f"{name}.py:" in line)
            for name in snippets}


def test_a_handler_for_another_event_type_is_a_mypy_error(mypy_report: dict[str, str]) -> None:
    report = mypy_report["mismatched"]
    assert 'Argument 2 to "on" of "Handlers" has incompatible type' in report
    assert "Event[ReplyGenerated]" in report and "Event[InboundMessageReceived]" in report


def test_matching_registrations_type_check(mypy_report: dict[str, str]) -> None:
    assert mypy_report["right"] == ""


async def _on_reply(_event: object) -> None: ...


def test_handlers_map_type_names_and_refuse_a_second_handler() -> None:
    handlers = Handlers().on(ReplyGenerated, _on_reply)
    assert dict(handlers) == {ReplyGenerated.TYPE: _on_reply}
    assert InboundMessageReceived.TYPE not in handlers
    with pytest.raises(ValueError, match="already registered"):
        handlers.on(ReplyGenerated, _on_reply)
