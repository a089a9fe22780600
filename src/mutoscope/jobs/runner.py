"""The job-runner interface and the in-process runner of the embedded default.

The database is the queue: a runner only wakes workers; whoever claims a row
(`repositories.claim_next_video`) runs it. That keeps queued jobs safe across
restarts and lets priority live in one ORDER BY.
"""

from __future__ import annotations

import abc
import logging
import threading
import time

from mutoscope.db import repositories as repo
from mutoscope.db.models import now
from mutoscope.jobs.assets import VARIANTS, variant_key
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.generation import run_video_job

logger = logging.getLogger(__name__)


class JobRunner(abc.ABC):
    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def submit(self, video_id: str) -> None:
        """Called after the job's row is committed as queued."""

    @abc.abstractmethod
    def cancel(self, video_id: str) -> None:
        """Ask a running job to stop at its next denoising step (the row is already flagged)."""


class InProcessRunner(JobRunner):
    """Worker threads inside the server process (one by default: a GPU runs one job at a time)."""

    def __init__(self, ctx: JobContext, workers: int = 1, recover: bool = True):
        self.ctx = ctx
        self.workers = workers
        self.recover = recover
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_sweep = 0.0

    def start(self) -> None:
        if self.recover:
            with self.ctx.sessions() as s:
                requeued, failed = repo.recover_interrupted(s, self.ctx.settings.max_attempts)
            if requeued or failed:
                logger.warning("recovered interrupted jobs: %d re-queued, %d failed", requeued, failed)
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"mutoscope-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5)

    def submit(self, video_id: str) -> None:
        self._wake.set()

    def cancel(self, video_id: str) -> None:
        self.ctx.request_cancel(video_id)

    def _sweep_expired(self) -> None:
        """While idle, at most once a minute: remove assets past the operator's retention."""
        t = time.monotonic()
        if t - self._last_sweep < 60:
            return
        self._last_sweep = t
        try:
            with self.ctx.sessions() as s:
                expired = repo.expired_videos(s, now())
            for video_id in expired:
                for variant in VARIANTS:
                    self.ctx.storage.delete_prefix(variant_key(video_id, variant))
        except Exception:
            logger.exception("retention sweep failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.ctx.sessions() as s:
                    video = repo.claim_next_video(s)
                    video_id = video.id if video else None
            except Exception:
                logger.exception("claiming the next job failed")
                video_id = None
            if video_id is None:
                self._sweep_expired()
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            run_video_job(self.ctx, video_id)
