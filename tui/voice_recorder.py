"""The panic button's voice message: a configured file, or a recording with the system recorder.

Both end as a `VoiceClip` checked by the messenger's content schema (`voice_duration_ms`: Opus
in Ogg or PCM WAV, one second to an hour), so what the dialog accepts the recipients can open.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from messenger.client.content import ContentError, voice_duration_ms

__all__ = ["RecorderMissing", "VoiceClip", "VoiceError", "load_voice", "record_voice"]

#: Recorders tried in order when none is configured: ALSA's, then PulseAudio's (both write WAV).
_RECORDERS = (
    ("arecord", "arecord -q -f S16_LE -r 16000 -c 1 -d {seconds} {path}"),
    ("parecord", "parecord --file-format=wav --channels=1 --rate=16000 {path}"),
)


class VoiceError(ValueError):
    """The voice message cannot be used; the message says why in one sentence."""


class RecorderMissing(VoiceError):
    """No recorder is configured and none of the usual ones is installed."""


@dataclass(frozen=True)
class VoiceClip:
    data: bytes
    mime: str
    duration_ms: int
    source: str  # the file it came from, for the dialog to show


def load_voice(path: Path) -> VoiceClip:
    """Read a voice file (.ogg Opus or .wav); VoiceError if it is missing or not one of those."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VoiceError(f"Cannot read the voice message {path}: {exc.strerror}.") from exc
    mime = "audio/wav" if data[:4] == b"RIFF" else "audio/ogg"
    try:
        duration = voice_duration_ms(data, mime)
    except ContentError as exc:
        raise VoiceError(f"{path} cannot be sent as a voice message ({exc}).") from exc
    return VoiceClip(data, mime, duration, str(path))


def recorder_command(configured: str | None, path: Path, seconds: int) -> list[str]:
    """The recorder's command line: the configured one (with `{path}` and `{seconds}`), else the
    first installed of arecord and parecord. Raises RecorderMissing."""
    if configured:
        template = configured
    else:
        found = next((t for name, t in _RECORDERS if shutil.which(name)), None)
        if found is None:
            raise RecorderMissing(
                "No voice recorder found (arecord or parecord); set [tui] panic_voice to a "
                "recorded .ogg or .wav file, or [tui] voice_recorder to a recording command."
            )
        template = found
    return [part.format(path=str(path), seconds=seconds) for part in shlex.split(template)]


async def record_voice(configured: str | None, path: Path, seconds: int) -> VoiceClip:
    """Record `seconds` of speech into `path` (WAV) and load it; VoiceError on any failure.
    A recorder that does not stop by itself is stopped after the time is up."""
    argv = recorder_command(configured, path, seconds)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise VoiceError(f"Cannot start the recorder {argv[0]}: {exc.strerror}.") from exc
    try:
        async with asyncio.timeout(seconds + 2):
            _, err = await process.communicate()
    except TimeoutError:
        process.terminate()
        _, err = await process.communicate()
    if process.returncode not in (0, -15) and not path.exists():
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise VoiceError(f"The recorder {argv[0]} failed: {reason[0][:200]}")
    return load_voice(path)
