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

    return build_job_context(Settings())


@celery_app.task(name="mutoscope.run_video")
def run_video(video_id: str) -> None:
    ctx = _worker_context()
    with ctx.sessions() as s:
        # Idempotent: a redelivered task for a job that already ran (or is running elsewhere) claims nothing.
        if not repo.claim_video(s, video_id):
            return
    run_video_job(ctx, video_id)


class CeleryRunner(JobRunner):
    """The API side: enqueue after commit; cancellation travels through the row's cancel flag."""

    def __init__(self, ctx: JobContext):
        self.ctx = ctx

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def submit(self, video_id: str) -> None:
        run_video.delay(video_id)

    def cancel(self, video_id: str) -> None:
        self.ctx.request_cancel(video_id)
