"""Which external editor to start for a text, and a sentence when there is none."""

from __future__ import annotations

import os
import shlex
import shutil


class EditorMissing(LookupError):
    """No usable external editor; the message is one line for the user."""


def editor_command(configured: str | None) -> list[str]:
    """The command line of the editor: `[tui] editor`, then `$VISUAL`, `$EDITOR`, `vi`.

    Checked before the terminal is handed over: a missing program would otherwise leave the
    user in front of a blank, suspended screen.

    Raises:
        EditorMissing: the command is empty or its program is not installed.
    """
    line = configured or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(line)
    except ValueError:
        argv = []
    if not argv:
        raise EditorMissing(f"The editor setting {line!r} is no command; writing here instead.")
    if shutil.which(argv[0]) is None:
        raise EditorMissing(
            f"The editor {argv[0]!r} is not installed; writing here instead "
            "(set $EDITOR or [tui] editor)."
        )
    return argv
