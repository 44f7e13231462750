"""Keep FFmpeg's own log lines off stderr: mmfs reports the error (with FFmpeg's last message) itself.

torchvision sets PyAV's log level to ERROR when it is imported, so the level is re-asserted before
each item is decoded rather than once at import time.
"""

from __future__ import annotations


def quiet_ffmpeg() -> None:
    """Silence FFmpeg logging through PyAV (a cheap call, safe to repeat)."""
    import av.logging

    av.logging.set_level(av.logging.PANIC)
