"""Scale-out runner: GPU workers fed by Celery over Redis, running the same `run_video_job`.

Start workers with `mutoscope worker` (or `celery -A mutoscope.jobs.celery_app worker
--concurrency 1`). Settings follow Celery's advice for long GPU jobs: late acks,
one task reserved at a time, and a visibility timeout longer than any job.
"""

from __future__ import annotations

from functools import cache

from celery import Celery

from mutoscope.config import Settings
from mutoscope.db import repositories as repo
from mutoscope.db.models import Video
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.generation import run_video_job
from mutoscope.jobs.runner import JobRunner


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


@cache
def _worker_context() -> JobContext:
    from mutoscope.wiring import build_job_context

    # The API process runs migrations; workers only connect.
    return build_job_context(Settings(), migrate=False)


@celery_app.task(name="mutoscope.run_next")
def run_next() -> str | None:
    """Claim and run the most urgent queued job.

    Messages carry no job id on purpose: the database is the queue, so plan priority and
    per-user fairness hold in this mode too, and a redelivered or duplicate message just
    claims the next job (or nothing) instead of running one twice.
    """
    ctx = _worker_context()
    with ctx.sessions() as s:
        video = repo.claim_next_video(s)
        video_id = video.id if video else None
    if video_id is not None:
        run_video_job(ctx, video_id)
    return video_id


class CeleryRunner(JobRunner):
    """The API side: one message per queued job, sent after commit; cancellation travels in the row."""

    def __init__(self, ctx: JobContext):
        self.ctx = ctx

    def start(self) -> None:
        # Jobs queued before a restart get their wake-up messages again (extra ones are harmless).
        with self.ctx.sessions() as s:
            queued = s.query(Video.id).filter(Video.status == "queued", Video.deleted_at.is_(None)).count()
        for _ in range(queued):
            run_next.delay()

    def stop(self) -> None:
        pass

    def submit(self, video_id: str) -> None:
        run_next.delay()

    def cancel(self, video_id: str) -> None:
        self.ctx.request_cancel(video_id)
