"""The bucket goes away while a job renders: the job fails `storage_unavailable`, refunded, and the server
keeps answering. The S3 server here is private to the test, so stopping it disturbs no one else."""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer, wait_for
from tests.s3 import start_s3_server

pytestmark = pytest.mark.slow


def test_a_job_whose_bucket_disappears_fails_refunded(tmp_path):
    s3 = start_s3_server(tmp_path / "s3")
    srv = None
    try:
        srv = LiveServer(tmp_path / "data", **s3.env("outage")).start()
        client = srv.client()
        job = client.videos.create(prompt="the bucket goes away", extra_body={"num_inference_steps": 30})
        wait_for(lambda: client.videos.retrieve(job.id).progress > 0, timeout=180)
        s3.stop()
        failed = client.videos.poll(job.id, poll_interval_ms=300)
        assert failed.status == "failed" and failed.error.code == "storage_unavailable", failed.error
        with srv.http() as h:
            usage = h.get("/v1/usage").json()
            assert (usage["spent"], usage["reserved"], usage["active_jobs"]) == (0.0, 0.0, 0)
            assert h.get("/health").status_code == 200
    finally:
        if srv is not None:
            srv.stop()
        s3.stop()
