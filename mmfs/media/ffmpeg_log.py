"""Keep FFmpeg's log lines off stderr and out of Python: mmfs reports errors (with their cause) itself.

PyAV's Python log callback takes the GIL from FFmpeg's own threads. A frame-threaded decoder that logs
an error while its context is being freed (by a thread that holds the GIL and waits for those threads)
then deadlocks the process: a corrupt video hung the run that way. So FFmpeg gets PyAV's no-op
callback, which never touches the GIL. torchvision sets PyAV's level to ERROR (installing the Python
callback) when it is imported, so this is re-asserted before each item is decoded.
"""

from __future__ import annotations


def quiet_ffmpeg() -> None:
    """Route FFmpeg logging to PyAV's no-op callback (a cheap call, safe to repeat)."""
    import av.logging

    av.logging.set_level(None)
