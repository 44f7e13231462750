"""Named fault points at every commit boundary: no-ops in production, patched by tests to crash.

Tests set `faults.ACTIVE[Fault.X]` to an exception (raised there) or to "kill" (the process dies
with SIGKILL there), which is how exactly-once resume is proven without luck.
"""

from __future__ import annotations

import os
import signal
import time
from enum import StrEnum


class Fault(StrEnum):
    """Where a run can be made to fail on purpose."""

    BEFORE_FRAGMENT_WRITE = "before_fragment_write"  # a batch is built, nothing written yet
    AFTER_FRAGMENTS_BEFORE_COMMIT = "after_fragments_before_commit"  # some tables of a batch written
    AFTER_COMMIT_BEFORE_LEDGER = "after_commit_before_ledger"  # data written, media rows not yet
    MID_TRANSFORM = "mid_transform"  # inside an item's extraction, after its probe


ACTIVE: dict[Fault, BaseException | str] = {}
# e.g. MMFS_FAULT=after_commit_before_ledger:kill, or mid_transform:hang@stuck.wav (only items whose
# uri contains "stuck.wav"), for subprocess tests. Actions: kill (SIGKILL), hang (sleep forever), raise.
_ENV = "MMFS_FAULT"


def _from_env() -> None:
    spec = os.environ.get(_ENV)
    if spec:
        name, _, action = spec.partition(":")
        ACTIVE[Fault(name)] = action or "kill"


def hit(point: Fault, key: str | None = None) -> None:
    """Fail here if a test armed this point (for this `key`, when the action names one); else nothing."""
    if not ACTIVE and _ENV not in os.environ:
        return
    _from_env()
    action = ACTIVE.get(point)
    if action is None:
        return
    if isinstance(action, str) and "@" in action:
        action, _, wanted = action.partition("@")
        if key is None or wanted not in key:
            return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "hang":
        while True:  # a decoder stuck for good: only a kill ends it
            time.sleep(3600)
    if isinstance(action, BaseException):
        raise action
    raise RuntimeError(f"fault injected at {point.value}")
