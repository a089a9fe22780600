"""The progress bar of a render in this process: the percentage and what the job is doing in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mutoscope.protocol.videos import ProgressDetail


def job_bar(console: Console) -> Progress:
    # transient: the bar goes when the render ends, so a failure's one line is the last thing on screen.
    # markup off: a prompt or phase text is shown as written, never read as rich markup.
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[detail]}", markup=False),
                    TimeElapsedColumn(), console=console, transient=True)


def reporter(bar: Progress, task: TaskID) -> Callable[..., None]:
    """A `report(percent, detail)` for jobs/generation.py's render that moves the bar and says the phase."""

    def report(pct: int, detail: Any = None) -> None:
        read = ProgressDetail.read(detail)
        bar.update(task, completed=pct, **({"detail": read.text} if read else {}))

    return report
