"""The Whisper base model: assembled once from its two packages, checksum verified."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from transcription import model_files
from transcription.model_cli import app
from transcription.model_files import (
    PINNED_SHA256,
    ModelError,
    ensure_model,
    model_dir_from,
    sha256_of,
)
from typer.testing import CliRunner

# Copies and hashes the real model's parts (about 140 MB): not a unit.
pytestmark = pytest.mark.integration


def part_sizes() -> int:
    return sum(len((files(pkg) / "data" / name).read_bytes()) for pkg, name in (
        (model_files.PART1, "model.bin.part1"), (model_files.PART2, "model.bin.part2")))


def test_the_model_is_assembled_from_both_parts_and_verified(tmp_path: Path) -> None:
    model = ensure_model(tmp_path)
    assert model == tmp_path / "whisper-base"
    assert sorted(p.name for p in model.iterdir()) == sorted(PINNED_SHA256)
    assert (model / "model.bin").stat().st_size == part_sizes()
    assert sha256_of(model / "model.bin") == PINNED_SHA256["model.bin"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".whisper-base-")] == []


def test_a_valid_cache_is_left_alone(tmp_path: Path) -> None:
    model = ensure_model(tmp_path)
    before = (model / "model.bin").stat()
    assert ensure_model(tmp_path) == model
    after = (model / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_corrupted_cache_is_assembled_again(tmp_path: Path) -> None:
    model = ensure_model(tmp_path)
    with (model / "model.bin").open("r+b") as f:  # a half-written or damaged copy
        f.truncate(1000)
    assert ensure_model(tmp_path) == model
    assert sha256_of(model / "model.bin") == PINNED_SHA256["model.bin"]


def test_parts_that_do_not_match_the_pinned_checksum_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PINNED_SHA256, "model.bin", "0" * 64)
    with pytest.raises(ModelError, match="pinned checksum"):
        ensure_model(tmp_path)
    assert not (tmp_path / "whisper-base").exists()  # nothing half-made is left to load
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_an_unwritable_cache_names_the_setting(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(ModelError, match="WHISPER_MODEL_CACHE"):
        ensure_model(blocked / "models")


def test_a_mounted_model_must_look_like_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="WHISPER_MODEL_PATH"):
        model_dir_from(tmp_path, tmp_path / "cache")
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    assert model_dir_from(tmp_path, tmp_path / "cache") == tmp_path


def test_the_setup_command_assembles_and_prints_the_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--cache", str(tmp_path)], env={"WHISPER_MODEL_PATH": ""})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "whisper-base")
    assert sha256_of(tmp_path / "whisper-base" / "model.bin") == PINNED_SHA256["model.bin"]
