"""What a running job says it is doing, in words: its phase, its step and the time left from measured rates.

A job's percentage alone sits still for long stretches (loading a model, decoding, encoding). Each report
therefore carries a detail: `{"phase": "denoising", "step": 5, "steps": 8, "eta_seconds": 12}` (and `shot`,
`shots` inside a storyboard), stored beside `progress`; the API shows it with one line of text for people
(`protocol.videos.ProgressDetail.read`), which the web page, the CLI and MCP show. Torch-free.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Detail = dict[str, Any]


class DenoiseClock:
    """Turns the engine's denoise fractions into step k of n, and the seconds left from the rate so far.

    The engine reports step k of n as the fraction k / n, from 1 / n at the first step, and 0 just before
    the first step (after the model is loaded): so n is read off the first step, and the rate is measured
    from that start, leaving the loading time out of it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._started: float | None = None
        self.steps: int | None = None

    def detail(self, fraction: float) -> Detail:
        now = self._clock()
        if fraction <= 0 or self._started is None:
            self._started = now if self._started is None else self._started
            if fraction <= 0:
                return {"phase": "denoising"}
        if self.steps is None:
            self.steps = max(1, round(1 / fraction))
        step = min(self.steps, max(1, round(fraction * self.steps)))
        if step >= self.steps:
            return {"phase": "decoding"}  # the last step is done; the VAE decodes next
        per_step = (now - self._started) / step
        return {"phase": "denoising", "step": step, "steps": self.steps,
                "eta_seconds": max(1, round(per_step * (self.steps - step)))}


def in_shot(detail: Detail | None, shot: int, shots: int) -> Detail | None:
    """A storyboard shot's detail: the same, saying which shot (1-based) of how many."""
    return None if detail is None else {**detail, "shot": shot, "shots": shots}
