"""The breaking-change rule for public events, and the released-schema check built on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel
from switchboard_contracts import EventData, Registry, registry
from switchboard_contracts.catalogue import USAGE, Undeclared, contracts
from switchboard_contracts.compatibility import breaking_changes
from switchboard_contracts.released import Problem, PublicSchema, check, release


class Part(BaseModel):
    url: str


class Released(BaseModel):
    turn: int
    text: str
    note: str | None = None
    parts: list[Part] = []


class Renamed(BaseModel):  # text -> body
    turn: int
    body: str
    note: str | None = None
    parts: list[Part] = []


class Removed(BaseModel):
    turn: int
    note: str | None = None
    parts: list[Part] = []


class TypeChanged(BaseModel):
    turn: str
    text: str
    note: str | None = None
    parts: list[Part] = []


class MadeNullable(BaseModel):
    turn: int | None
    text: str
    note: str | None = None
    parts: list[Part] = []


class MadeRequired(BaseModel):
    turn: int
    text: str
    note: str | None
    parts: list[Part] = []


class RequiredAdded(BaseModel):
    turn: int
    text: str
    note: str | None = None
    parts: list[Part] = []
    model: str


class OptionalAdded(BaseModel):
    """Documentation may change too."""

    turn: int
    text: str
    note: str | None = None
    parts: list[Part] = []
    model: str | None = None


class NestedPart(BaseModel):
    href: str


class NestedRenamed(BaseModel):
    turn: int
    text: str
    note: str | None = None
    parts: list[NestedPart] = []


@pytest.mark.parametrize(("current", "expected"), [
    (Released, []),
    (Removed, ["text: removed"]),
    (Renamed, ["text: removed", "body: added as required"]),
    (TypeChanged, ["turn: type changed from integer to string"]),
    (MadeNullable, ["turn: type changed from integer to string | null"[:0]
                    + "turn: type changed from integer to integer | null"]),
    (MadeRequired, ["note: made required"]),
    (RequiredAdded, ["model: added as required"]),
    (OptionalAdded, []),
    (NestedRenamed, ["parts[].url: removed", "parts[].href: added as required"]),
])
def test_breaking_changes_against_the_released_schema(
        current: type[BaseModel], expected: list[str]) -> None:
    assert breaking_changes(Released.model_json_schema(), current.model_json_schema()) == expected


def schema(version: str, model: type[BaseModel], name: str = "Turned") -> PublicSchema:
    return PublicSchema(name, version, model.model_json_schema())


def texts(problems: list[Problem]) -> list[str]:
    return [p.text for p in problems]


def test_a_breaking_change_is_refused_within_a_major_and_allowed_with_a_new_one(
        tmp_path: Path) -> None:
    release([schema("1.0", Released)], tmp_path)
    assert check([schema("1.0", Released)], tmp_path) == []

    refused = texts(check([schema("1.1", Removed)], tmp_path))
    assert refused == ["Turned v1: text: removed (a breaking change needs a new major version)"]
    with pytest.raises(ValueError, match="text: removed"):
        release([schema("1.1", Removed)], tmp_path)

    # A new major is released afresh; the old major's snapshot stays as history.
    assert "new major" in texts(check([schema("2.0", Removed)], tmp_path))[0]
    release([schema("2.0", Removed)], tmp_path)
    assert check([schema("2.0", Removed)], tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Turned.v1.json", "Turned.v2.json"]


def test_a_compatible_change_needs_a_minor_bump_and_a_release(tmp_path: Path) -> None:
    release([schema("1.0", Released)], tmp_path)
    assert "bump the minor" in texts(check([schema("1.0", OptionalAdded)], tmp_path))[0]
    assert "not released yet" in texts(check([schema("1.1", OptionalAdded)], tmp_path))[0]
    release([schema("1.1", OptionalAdded)], tmp_path)
    assert check([schema("1.1", OptionalAdded)], tmp_path) == []


def test_a_released_event_cannot_disappear_or_go_unreleased(tmp_path: Path) -> None:
    release([schema("1.0", Released)], tmp_path)
    assert "no longer a public event" in texts(check([], tmp_path))[0]
    assert "not released" in texts(check([schema("1.0", Released, "Other"),
                                          schema("1.0", Released)], tmp_path))[0]


def test_every_registered_event_says_who_reads_it() -> None:
    assert {model.TYPE for model in registry} == set(USAGE)


def test_an_event_without_that_decision_is_refused() -> None:
    fresh = Registry()

    @fresh.register
    class Surprise(EventData):
        __module__ = "switchboard_contracts.events.gateway"
        TYPE = "Surprise"

    with pytest.raises(Undeclared, match="Surprise"):
        list(contracts(fresh))
