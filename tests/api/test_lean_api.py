"""An API-only process (`serve --no-worker`) never loads torch, and `mutoscope worker` processes sharing its
database and assets run its jobs; SIGTERM of a polling worker hands its running job back."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer, stop_process, wait_for

pytestmark = pytest.mark.slow

FAST = {"num_inference_steps": 2}


def test_api_only_process_has_no_torch_and_a_worker_runs_its_jobs(tmp_path):
    api = LiveServer(tmp_path / "data", "--no-worker", MUTOSCOPE_LEASE_SECONDS="4").start()
    log = tmp_path / "worker.log"
    worker = None
    try:
        assert "libtorch" not in Path(f"/proc/{api.proc.pid}/maps").read_text()
        client = api.client()
        models = {m.id for m in client.models.list()}
        assert "sora-2" in models  # the catalog comes from the registry, without the engine
        slow = client.videos.create(prompt="handed back on SIGTERM", extra_body={"num_inference_steps": 40})
        worker = subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"], env=api.env,
                                  stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: client.videos.retrieve(slow.id).progress > 0, timeout=180)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        back = client.videos.retrieve(slow.id)
        assert back.status == "queued", log.read_text()[-2000:]  # handed back, not failed, not stranded
        worker = subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"], env=api.env,
                                  stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        quick = client.videos.create(prompt="after the hand-back", extra_body=FAST)
        for vid in (slow.id, quick.id):
            assert client.videos.poll(vid, poll_interval_ms=300).status == "completed", log.read_text()[-2000:]
        assert client.videos.download_content(quick.id).read()[4:8] == b"ftyp"
        assert "libtorch" not in Path(f"/proc/{api.proc.pid}/maps").read_text()
    finally:
        if worker is not None and worker.poll() is None:
            stop_process(worker)
        api.stop()
