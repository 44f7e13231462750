"""Progress for long work: a bar with rate and ETA on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("mmfs.progress")


class Progress:
    """Counts finished units; shows rate and ETA on stderr (never stdout, which carries --json)."""

    def __init__(self, total: int, unit: str, *, enabled: bool = True, log_every_s: float = 10.0) -> None:
        self.total, self.unit, self.done = total, unit, 0
        self.start = self.last_log = time.monotonic()
        self.log_every_s = log_every_s
        self.bar = None
        if enabled and total > 0 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
        self.enabled = enabled

    def advance(self, n: int) -> None:
        """Record n more finished units."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if self.enabled and (now - self.last_log >= self.log_every_s or self.done == self.total):
            self.last_log = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """`12/40 media, 1.5 media/s, ETA 19 s`."""
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = f"{eta:.0f} s" if eta != float("inf") else "?"
        return f"{self.done}/{self.total} {self.unit}, {rate:.2f} {self.unit}/s, ETA {eta_text}"

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
