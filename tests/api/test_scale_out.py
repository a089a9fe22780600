"""Scale-out mode: the API on PostgreSQL enqueues through Redis; a separate Celery worker runs the jobs."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest

from tests.conftest import LiveServer, stop_process, wait_for

pytestmark = pytest.mark.slow

FAST = {"num_inference_steps": 2}


def test_celery_worker_runs_jobs_and_stops_cancelled_ones(tmp_path, pg_url, broker_url):
    env = {"MUTOSCOPE_DATABASE_URL": pg_url, "MUTOSCOPE_RUNNER": "celery", "MUTOSCOPE_BROKER_URL": broker_url}
    api = LiveServer(tmp_path / "data", **env).start()
    # The worker shares the database, the broker and (here) the asset folder; it is its own process.
    worker = subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"], env=api.env,
                              stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT)
    try:
        client = api.client()
        video = client.videos.create_and_poll(prompt="made by a Celery worker", extra_body=FAST)
        assert video.status == "completed", (video.error, (tmp_path / "worker.log").read_text()[-3000:])
        assert client.videos.download_content(video.id).read()[4:8] == b"ftyp"

        slow = client.videos.create(prompt="stopped across processes", extra_body={"num_inference_steps": 300})
        wait_for(lambda: client.videos.retrieve(slow.id).progress > 0, timeout=120)
        client.videos.delete(slow.id)  # the worker sees the row's cancel flag at its next step
        nxt = client.videos.create_and_poll(prompt="after the cancelled one", extra_body=FAST)
        assert nxt.status == "completed" and nxt.completed_at - nxt.created_at < 90
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(slow.id)
    finally:
        stop_process(worker)
        api.stop()


def _worker(api: LiveServer, log):
    return subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"], env=api.env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def test_a_killed_worker_s_job_is_taken_back_then_failed_after_max_attempts(tmp_path, pg_url, broker_url):
    """kill -9 a Celery worker mid-render: its lease runs out, the API's lease watch re-queues the job and a
    new worker completes it, charged once; with no attempts left the job fails worker_lost, refunded."""
    env = {"MUTOSCOPE_DATABASE_URL": pg_url, "MUTOSCOPE_RUNNER": "celery", "MUTOSCOPE_BROKER_URL": broker_url,
           "MUTOSCOPE_LEASE_SECONDS": "3", "MUTOSCOPE_MAX_ATTEMPTS": "2"}
    api = LiveServer(tmp_path / "data", **env).start()
    log = tmp_path / "worker.log"
    workers = [_worker(api, log)]
    try:
        client = api.client()
        job = client.videos.create(prompt="outlives its worker", extra_body={"num_inference_steps": 30})
        wait_for(lambda: client.videos.retrieve(job.id).progress > 0, timeout=180)
        workers[0].kill()
        workers[0].wait()
        # Nobody renews the lease now: within a lease and a half the job is back in the queue.
        wait_for(lambda: client.videos.retrieve(job.id).status == "queued", timeout=30)
        workers.append(_worker(api, log))
        done = client.videos.poll(job.id, poll_interval_ms=300)
        assert done.status == "completed", (done.error, log.read_text()[-3000:])
        usage = api.http().get("/v1/usage").json()
        assert (usage["spent"], usage["reserved"], usage["active_jobs"]) == (float(done.seconds), 0.0, 0)

        # Second life: killed on both attempts -> failed worker_lost, nothing charged for it.
        doomed = client.videos.create(prompt="dies twice", extra_body={"num_inference_steps": 30})
        for _ in range(2):
            wait_for(lambda: client.videos.retrieve(doomed.id).status == "in_progress"
                     and client.videos.retrieve(doomed.id).progress > 0, timeout=180)
            workers[-1].kill()
            workers[-1].wait()
            if client.videos.retrieve(doomed.id).status != "failed":
                wait_for(lambda: client.videos.retrieve(doomed.id).status in ("queued", "failed"), timeout=30)
            if client.videos.retrieve(doomed.id).status == "queued":
                workers.append(_worker(api, log))
        final = wait_for(lambda: (v := client.videos.retrieve(doomed.id)).status == "failed" and v, timeout=30)
        assert final.error.code == "worker_lost"
        usage = api.http().get("/v1/usage").json()
        assert (usage["spent"], usage["reserved"], usage["active_jobs"]) == (float(done.seconds), 0.0, 0)
    finally:
        for w in workers:
            stop_process(w)
        api.stop()
