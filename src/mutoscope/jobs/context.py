"""What a job needs from the process around it, built once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from mutoscope.config import Settings
from mutoscope.engine import VideoEngine
from mutoscope.storage import Storage


@dataclass
class JobContext:
    settings: Settings
    sessions: sessionmaker[Session]
    engine: VideoEngine
    storage: Storage
    # Cancellation requests seen by this process; checked on every denoising step.
    # Other processes (Celery workers) see the `cancel_requested` column instead.
    cancelled: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when the process is shutting down: running jobs stop at their next step and are handed back.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Housekeeping of rooms above this one that must run wherever leases are watched (a batch settling once
    # its lines have), handed in by the composition root so jobs/ never imports them.
    sweeps: tuple[Callable[[], None], ...] = ()

    def request_cancel(self, video_id: str) -> None:
        with self.lock:
            self.cancelled.add(video_id)

    def is_cancelled(self, video_id: str) -> bool:
        with self.lock:
            return video_id in self.cancelled

    def forget(self, video_id: str) -> None:
        with self.lock:
            self.cancelled.discard(video_id)
