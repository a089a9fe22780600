"""`mutoscope worker --gpus 0,1` as an operator starts it, beside `serve --no-worker`, on the CPU.

The launcher starts two rank processes in one torch.distributed group (gloo, as MUTOSCOPE_DEVICE=cpu
asks). A job of a model without `context_parallel` runs on rank 0 alone; a job of one with it is shared
with rank 1, and on this machine fails at load with the reason (diffusers needs an accelerator per rank;
tests/engine/test_parallel.py runs the shared job itself), after which both ranks take the next job.
SIGTERM to the launcher stops every rank.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_ALIASES, LiveServer

FAST = {"num_inference_steps": 2}


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ")".
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def api(tmp_path):
    env = {"MUTOSCOPE_DEVICE": "cpu", "MUTOSCOPE_ENGINE_OVERRIDES": json.dumps({"tiny-wan.context_parallel": "ulysses"}),
           "MUTOSCOPE_MODEL_ALIASES": json.dumps({**TEST_ALIASES, "wan-split": "tiny-wan"})}
    srv = LiveServer(tmp_path / "data", "--no-worker", **env).start()
    yield srv
    srv.stop()


def test_two_rank_worker_runs_jobs_and_stops_on_sigterm(api, tmp_path):
    log = tmp_path / "worker.log"
    launcher = subprocess.Popen([sys.executable, "-m", "mutoscope", "worker", "--gpus", "0,1"], env=api.env,
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        client = api.client()
        one = client.videos.create_and_poll(prompt="rank 0 alone", extra_body=FAST)
        assert one.status == "completed", (one.error, log.read_text()[-3000:])
        ranks = _children(launcher.pid)
        assert len(ranks) == 2 and all(map(_alive, ranks))

        shared = client.videos.create_and_poll(prompt="split over both", model="wan-split", seconds="4",
                                               extra_body=FAST)
        assert shared.status == "failed" and "needs a GPU per rank" in shared.error.message, shared.error
        assert "wan-split" in shared.error.message and "tiny-wan" not in shared.error.message

        again = client.videos.create_and_poll(prompt="both ranks still there", extra_body=FAST)
        assert again.status == "completed" and all(map(_alive, ranks))
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=60)
    # The launcher returns once both ranks have exited (it waits for them, and kills one still there after 30 s).
    assert not any(map(_alive, ranks))
    assert launcher.returncode == 0, log.read_text()[-3000:]


def test_gpu_lists_are_checked(api):
    out = subprocess.run([sys.executable, "-m", "mutoscope", "worker", "--gpus", "0,0"], env=api.env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "lists a GPU twice" in out.stderr
