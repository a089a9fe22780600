"""Progress in words: the engine's step fractions become a phase, step k of n and time left; the API's
`progress_detail` reads a stored detail defensively and stays inside what the openai SDK's Video accepts."""

from __future__ import annotations

from openai.types import Video

from mutoscope.jobs.progress import DenoiseClock, in_shot
from mutoscope.protocol.videos import ProgressDetail, VideoObject


def test_denoise_fractions_become_steps_and_time_left():
    now = [100.0]
    clock = DenoiseClock(clock=lambda: now[0])
    assert clock.detail(0.0) == {"phase": "denoising"}  # the model is loaded; the first step begins
    now[0] += 2.0
    assert clock.detail(1 / 8) == {"phase": "denoising", "step": 1, "steps": 8, "eta_seconds": 14}
    now[0] += 8.0  # 10 s for 5 steps: 2 s a step, 3 steps left
    assert clock.detail(5 / 8) == {"phase": "denoising", "step": 5, "steps": 8, "eta_seconds": 6}
    assert clock.detail(1.0) == {"phase": "decoding"}


def test_the_detail_reads_as_one_line_and_a_bad_row_reads_as_none():
    d = ProgressDetail.read(in_shot({"phase": "denoising", "step": 5, "steps": 8, "eta_seconds": 12}, 2, 3))
    assert d is not None and d.text == "shot 2 of 3 · denoising 5/8 · about 12 s left"
    assert ProgressDetail.read({"phase": "encoding"}).text == "encoding"
    assert ProgressDetail.read({"phase": "denoising", "eta_seconds": 600}).text == "denoising · about 10 min left"
    for bad in (None, [], "denoising", {"phase": "rm -rf"}, {"phase": "denoising", "step": -1},
                {"phase": "denoising", "step": "5"}):
        assert ProgressDetail.read(bad) is None, bad


def test_the_openai_sdk_reads_a_video_with_progress_detail():
    obj = VideoObject(id="video_1", model="sora-2", status="in_progress", progress=40,
                      progress_detail=ProgressDetail.read({"phase": "denoising", "step": 3, "steps": 8}),
                      created_at=1, completed_at=None, expires_at=None, prompt="p", size="720x1280", seconds="4",
                      remixed_from_video_id=None, error=None)
    video = Video.model_validate(obj.model_dump())
    assert video.progress == 40 and video.model_extra["progress_detail"]["text"] == "denoising 3/8"
