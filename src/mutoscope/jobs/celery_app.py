"""Scale-out runner: GPU workers fed by Celery over Redis, running the same `run_video_job`.

Start workers with `mutoscope worker` (MUTOSCOPE_RUNNER=celery): the composition root hands this app the
factory of a worker's `JobContext` (`wiring.celery_worker_app`), so this room never imports it. Settings
follow Celery's advice for long GPU jobs: late acks, one task reserved at a time, and a visibility timeout
longer than any job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

from celery import Celery

from mutoscope.config import Settings
from mutoscope.db.models import Video
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.base import NoWorkerRunner, Reclaimer
from mutoscope.videos import transitions

logger = logging.getLogger(__name__)


def make_celery(settings: Settings) -> Celery:
    app = Celery("mutoscope", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": 6 * 3600},
        task_serializer="json",
        accept_content=["json"],
    )
    return app


celery_app = make_celery(Settings())
_context_factory: Callable[[], JobContext] | None = None


def use_context_factory(factory: Callable[[], JobContext]) -> Celery:
    """How a worker builds its parts (database, engine, storage), handed over before it takes its first task."""
    global _context_factory
    _context_factory = factory
    _worker_context.cache_clear()
    return celery_app


@cache
def _worker_context() -> JobContext:
    if _context_factory is None:
        raise RuntimeError("this Celery worker was started without a job context: run `mutoscope worker`")
    return _context_factory()


@cache
def _worker_id() -> str:
    return transitions.new_worker_id("celery")


@cache
def _reclaimer() -> Reclaimer:
    return Reclaimer(_worker_context(), {_worker_id()})


@celery_app.task(name="mutoscope.run_next")
def run_next() -> str | None:
    """Claim and run the most urgent queued job.

    Messages carry no job id on purpose: the database is the queue, so plan priority and
    per-user fairness hold in this mode too, and a redelivered or duplicate message just
    claims the next job (or nothing) instead of running one twice. Before claiming, the worker
    takes back jobs whose lease ran out, so a killed worker's job runs again on a live one.
    """
    from mutoscope.jobs.generation import run_video_job

    ctx = _worker_context()
    for _ in _reclaimer()():
        run_next.delay()
    with ctx.sessions() as s:
        claim = transitions.claim_next(s, _worker_id(), ctx.settings.lease_seconds)
    if claim is None:
        return None
    run_video_job(ctx, claim)
    return claim.video_id


class CeleryRunner(NoWorkerRunner):
    """The API side: one message per queued job, sent after commit; cancellation travels in the row.

    The API process also watches leases, so a job whose only worker was killed is re-queued (or failed
    after `max_attempts`) even while no worker is asking for work."""

    def start(self) -> None:
        # Jobs queued before a restart get their wake-up messages again (extra ones are harmless).
        with self.ctx.sessions() as s:
            queued = s.query(Video.id).filter(Video.status == "queued", Video.deleted_at.is_(None)).count()
        for _ in range(queued):
            run_next.delay()
        super().start()

    def after_reclaim(self, requeued: list[str]) -> None:
        for _ in requeued:
            run_next.delay()
        if not requeued:
            # A wake-up can be lost (a task that failed before claiming, a Redis restart); one spare message
            # a tick while jobs wait costs nothing, since a message that finds no job claims nothing.
            with self.ctx.sessions() as s:
                waiting = s.query(Video.id).filter(Video.status == "queued", Video.deleted_at.is_(None)).first()
            if waiting is not None:
                run_next.delay()

    def submit(self, video_id: str) -> None:
        run_next.delay()
