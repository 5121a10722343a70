"""A desktop notification for alarms, where the desktop offers one (`notify-send`).

Without it (a server console, ssh, tmux on a headless box) nothing happens: the banner and the
terminal bell are the alarm there.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

__all__ = ["notify_desktop"]

log = logging.getLogger(__name__)


async def notify_desktop(title: str, body: str, *, urgent: bool) -> bool:
    """Show a desktop notification; False when there is no notifier or it failed."""
    notifier = shutil.which("notify-send")
    if notifier is None:
        return False
    argv = [notifier, "--app-name=medbridge", f"--urgency={'critical' if urgent else 'normal'}"]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            title,
            body,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(5):
            code = await process.wait()
    except (OSError, TimeoutError) as exc:
        log.info("desktop notification not shown: %s", type(exc).__name__)
        return False
    return code == 0
