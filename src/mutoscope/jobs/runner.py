"""The job-runner interface and the in-process runner of the embedded default.

The database is the queue: a runner only wakes workers; whoever claims a row
(`videos.transitions.claim_next`) runs it under a lease. That keeps queued jobs safe across
restarts, lets priority live in one ORDER BY, and lets any runner take back a job whose worker died.
"""

from __future__ import annotations

import logging
import threading
import time

from mutoscope.db import repositories as repo
from mutoscope.db.models import now
from mutoscope.jobs.base import JobRunner, Reclaimer
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.generation import run_video_job
from mutoscope.storage.keys import VARIANTS, published_key
from mutoscope.videos import transitions

logger = logging.getLogger(__name__)


def sweep_expired(ctx: JobContext) -> None:
    """Remove the published files of videos past their retention."""
    with ctx.sessions() as s:
        keys = [published_key(v, variant) for v in repo.expired_videos(s, now()) for variant in VARIANTS]
    for key in keys:
        ctx.storage.delete_prefix(key)


class InProcessRunner(JobRunner):
    """Worker threads inside the server process (one by default: a GPU runs one job at a time)."""

    def __init__(self, ctx: JobContext, workers: int = 1):
        self.ctx = ctx
        self.workers = workers
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ids = {transitions.new_worker_id("inprocess") for _ in range(workers)}
        self._reclaim = Reclaimer(ctx, self._ids)
        self._last_sweep = 0.0

    def start(self) -> None:
        self._reclaim(force=True)  # jobs of this server's previous run (a crash) go back to the queue at once
        for i, worker_id in enumerate(sorted(self._ids)):
            t = threading.Thread(target=self._loop, args=(worker_id,), name=f"mutoscope-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self._wake.set()

    def stop(self) -> None:
        """Running jobs stop at their next step and go back to the queue for the next start."""
        self.ctx.stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=30)

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
            sweep_expired(self.ctx)
        except Exception:
            logger.exception("retention sweep failed")

    def _loop(self, worker_id: str) -> None:
        while not self.ctx.stopping.is_set():
            self._reclaim()
            try:
                with self.ctx.sessions() as s:
                    claim = transitions.claim_next(s, worker_id, self.ctx.settings.lease_seconds)
            except Exception:
                logger.exception("claiming the next job failed")
                claim = None
            if claim is None:
                self._sweep_expired()
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            try:
                run_video_job(self.ctx, claim)
            except Exception:  # it never raises by design; if it ever does, this thread still goes on
                logger.exception("video %s: the job runner raised", claim.video_id)
