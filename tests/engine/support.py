"""What the engine tests share: step hooks that record progress and can cancel."""

from __future__ import annotations


class RecordingHooks:
    """StepHooks that records progress and cancels after `cancel_after` denoising steps (every stage counted)."""

    def __init__(self, cancel_after: int | None = None):
        self.events: list[tuple[float, str]] = []
        self.cancel_after = cancel_after

    def on_progress(self, fraction: float, phase: str) -> None:
        self.events.append((fraction, phase))

    def should_cancel(self) -> bool:
        steps_done = sum(1 for f, phase in self.events if phase == "denoise" and f > 0)
        return self.cancel_after is not None and steps_done >= self.cancel_after
