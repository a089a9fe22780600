"""What every runner shares, kept free of the engine so an API process can hold a runner without torch."""

from __future__ import annotations

import abc
import logging
import time

from mutoscope.jobs import leftovers
from mutoscope.jobs.context import JobContext
from mutoscope.videos import transitions

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


class Reclaimer:
    """Takes back jobs whose lease ran out, at most every half lease; shared by every runner."""

    def __init__(self, ctx: JobContext, mine: set[str]):
        self.ctx, self.mine, self._last = ctx, mine, 0.0

    def __call__(self, force: bool = False) -> list[str]:
        t = time.monotonic()
        if not force and t - self._last < self.ctx.settings.lease_seconds / 2:
            return []
        self._last = t
        try:
            with self.ctx.sessions() as s:
                requeued, failed = transitions.reclaim(
                    s, self.ctx.settings.max_attempts,
                    dead_worker=lambda owner: transitions.local_holder_dead(owner, self.mine))
        except Exception:
            logger.exception("reclaiming expired leases failed")
            return []
        leftovers.clean_up(self.ctx, requeued + failed)  # the scratch and files of attempts whose lease is gone
        if requeued or failed:
            logger.warning("took back jobs of lost workers: %d re-queued, %d failed (%s)", len(requeued),
                           len(failed), transitions.WORKER_LOST)
        for sweep in self.ctx.sweeps:  # e.g. batches whose lines all settled, or whose window ended
            try:
                sweep()
            except Exception:
                logger.exception("a periodic sweep failed")
        return requeued


class NoWorkerRunner(JobRunner):
    """An API process whose jobs run elsewhere (`mutoscope worker` processes sharing the database and
    storage). It still watches leases, so a dead worker's job goes back to the queue."""

    def __init__(self, ctx: JobContext):
        import threading

        self.ctx = ctx
        self._reclaim = Reclaimer(ctx, set())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mutoscope-lease-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(max(0.5, self.ctx.settings.lease_seconds / 2)):
            self.after_reclaim(self._reclaim(force=True))

    def after_reclaim(self, requeued: list[str]) -> None:
        """Wake whoever runs jobs for the re-queued ones (the Celery runner sends messages)."""

    def stop(self) -> None:
        self._stop.set()

    def submit(self, video_id: str) -> None:
        pass  # workers poll the queue

    def cancel(self, video_id: str) -> None:
        pass  # the row is flagged; the worker holding the job sees it at its next step
