"""Scale-out mode: the API on PostgreSQL enqueues through Redis; a separate Celery worker runs the jobs."""

from __future__ import annotations

import random
import subprocess
import sys

import openai
import pytest
import redis

from tests.conftest import LiveServer, wait_for

FAST = {"num_inference_steps": 2}


@pytest.fixture
def broker_url():
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    try:
        r = redis.Redis.from_url(url)
        r.ping()
    except redis.ConnectionError as e:
        pytest.skip(f"Redis not reachable: {e}")
    r.flushdb()
    yield url
    r.flushdb()


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
        worker.terminate()
        worker.wait(timeout=30)
        api.stop()
