"""A progress line on stderr for long runs: ``fgi-rewrite: 123/1045 files``, redrawn in place and
cleared when the run ends, before anything else is printed.

The CLI shows it only on a terminal (see ``cli._shows_progress``), and it appears only once a run
has taken ``DELAY`` seconds, so the common quick runs (pre-commit, an editor on save) print
nothing. The verification is announced at once: it starts a subprocess that imports torch, which
takes seconds by itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TextIO

from fgi_rewrite.pipeline.options import ANALYZING, VERIFYING

DELAY = 1.0  # seconds before the line appears
INTERVAL = 0.1  # seconds between redraws


class ProgressLine:
    """A ``run.Progress`` callback that draws one line on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        delay: float | None = None,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.delay = DELAY if delay is None else delay
        self.start = clock()
        self.shown_at = -math.inf
        self.stage = ""
        self.width = 0  # characters drawn on the line so far

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage == VERIFYING:
            if not total:
                return
        elif now - self.start < self.delay:
            return
        elif stage == self.stage and done < total and now - self.shown_at < INTERVAL:
            return
        self.stage, self.shown_at = stage, now
        self._draw(describe(stage, done, total))

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clear()

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = max(self.width, len(text))


def describe(stage: str, done: int, total: int) -> str:
    if stage == ANALYZING:
        return f"fgi-rewrite: analyzing Functions, {done}/{total} files"
    if stage == VERIFYING:
        return f"fgi-rewrite: verifying {total} rewrite{'' if total == 1 else 's'}"
    return f"fgi-rewrite: {done}/{total} files"
