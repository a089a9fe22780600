"""A job that runs out of memory, on a live server: the allocation really fails, the worker survives.

Fault injection is the kernel's: once the server is warm, its address space is capped (RLIMIT_AS via
prlimit) at what it uses plus 0.75 GiB. A small job fits under the cap; a 1280x720, 4 s job on the tiny
model decodes over a GB of float32 video, so torch's CPU allocator is refused
(ENOMEM) inside the pipeline. The engine retries it once a step lower (on the CPU: the VAE tiled), fails
it `out_of_memory` naming the model and the modes, and the next job, under the same cap, completes.
"""

from __future__ import annotations

import resource
import sys

import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit and /proc are Linux's")
GiB = 2**30


def vm_size(pid: int) -> int:
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("oom") / "data").start()
    yield srv
    srv.stop()


def test_out_of_memory_fails_the_job_cleanly_and_the_worker_keeps_serving(live):
    client = live.client()
    small = dict(model="sora-2", prompt="a lighthouse at dusk", size="288x512", seconds="4")
    warm = client.videos.create_and_poll(**small)
    assert warm.status == "completed", warm.error

    pid = live.proc.pid
    limits = resource.prlimit(pid, resource.RLIMIT_AS)
    resource.prlimit(pid, resource.RLIMIT_AS, (vm_size(pid) + int(0.75 * GiB), limits[1]))
    try:
        big = client.videos.create_and_poll(model="sora-2", prompt="a lighthouse at dusk", size="1280x720",
                                            seconds="4")
        assert big.status == "failed"
        assert big.error.code == "out_of_memory", big.error
        message = big.error.message
        assert "sora-2" in message and "memory mode 'full' with VAE tiling off" in message
        assert "again when retried in memory mode 'full' with VAE tiling on" in message
        assert "tiny-ltx2" not in message  # the caller's name for the model, as every job error

        after = client.videos.create_and_poll(**small)
        assert after.status == "completed", after.error
        assert client.videos.download_content(after.id).read()[4:8] == b"ftyp"  # an MP4 came out
    finally:
        resource.prlimit(pid, resource.RLIMIT_AS, limits)
    log = live.log.read_text(errors="replace")
    assert "out of memory in memory mode 'full' with VAE tiling off; retrying once" in log
    assert live.proc.poll() is None


def test_the_retry_really_reloads_the_model_tiled(tmp_path):
    """The lower mode is what the reloaded pipelines run with (the VAE's own tiling flag), and nothing is
    below it on the CPU."""
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import load_registry

    engine = DiffusersEngine(load_registry(), tmp_path / "weights", device="cpu")
    assert engine.load("tiny-ltx2").text_to_video.vae.use_tiling is False
    lower = engine._lower_modes("tiny-ltx2")
    assert lower == {"memory": "full", "vae_tiling": True}
    engine.unload("tiny-ltx2")
    engine._lowered["tiny-ltx2"] = lower
    pipes = engine.load("tiny-ltx2")
    assert pipes.text_to_video.vae.use_tiling is True and pipes.modes["vae_tiling"] is True
    assert engine._lower_modes("tiny-ltx2") is None
    engine.unload("tiny-ltx2")  # an unload forgets the lowered mode: the next load is the file's again
    assert engine.load("tiny-ltx2").text_to_video.vae.use_tiling is False
