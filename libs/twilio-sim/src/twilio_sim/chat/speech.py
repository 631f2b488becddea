"""Voice notes from files or from text: espeak-ng speaks, opusenc (or ffmpeg) makes OGG/Opus.

WhatsApp voice notes are OGG containers with Opus inside, sent as ``audio/ogg``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

AUDIO_TYPES = {
    ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
    ".amr": "audio/amr", ".mp3": "audio/mpeg", ".aac": "audio/aac", ".m4a": "audio/mp4",
    ".3gp": "audio/3gpp", ".wav": "audio/wav",
}


class MissingTool(RuntimeError):
    """A program this needs is not installed; the message says which and how to get it."""


def content_type_for(path: Path) -> str:
    return AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _find(tool: str) -> str | None:
    return shutil.which(tool)


def speak(text: str) -> bytes:
    """Speak ``text`` into an OGG/Opus voice note."""
    espeak = _find("espeak-ng")
    if espeak is None:
        raise MissingTool("/say needs espeak-ng, which is not installed "
                          "(Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="sb-say-") as tmp:
        wav, ogg = Path(tmp) / "speech.wav", Path(tmp) / "voice.ogg"
        # Text on stdin, so a sentence starting with "-" is not taken for an option.
        subprocess.run([espeak, "--stdin", "-w", str(wav)], input=text.encode(), check=True,
                       capture_output=True)
        encode_opus(wav, ogg)
        return ogg.read_bytes()


def encode_opus(source: Path, target: Path) -> None:
    opusenc, ffmpeg = _find("opusenc"), _find("ffmpeg")
    if opusenc is not None:
        command = [opusenc, "--quiet", "--bitrate", "24", str(source), str(target)]
    elif ffmpeg is not None:
        command = [ffmpeg, "-loglevel", "error", "-y", "-i", str(source),
                   "-c:a", "libopus", "-b:a", "24k", str(target)]
    else:
        raise MissingTool("encoding OGG/Opus needs opusenc or ffmpeg, and neither is installed "
                          "(Debian: apt-get install opus-tools, or apt-get install ffmpeg)")
    subprocess.run(command, check=True, capture_output=True)
