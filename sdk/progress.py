"""A dependency-free progress bar for long work (quiet when not on a terminal): the CLI's
commands and a dataset run show it."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(done, total)`` redraws one line; on a non-terminal stream it prints only
    at 25% steps, so logs stay short."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        # Looked up now, not at import: pytest and others swap sys.stderr at run time.
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._started = time.perf_counter()
        self._last_quarter = -1
        self._tty = self.stream.isatty()

    def update(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` items."""
        share = done / total if total else 1.0
        elapsed = time.perf_counter() - self._started
        text = (f"{self.label} [{'#' * int(share * self.width):<{self.width}}] "
                f"{done}/{total} {elapsed:5.1f}s")
        if self._tty:
            self.stream.write("\r" + text)
            self.stream.flush()
        elif int(share * 4) > self._last_quarter:
            self._last_quarter = int(share * 4)
            self.stream.write(text + "\n")

    def close(self) -> None:
        """End the bar's line."""
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
