"""The `camera` extension field end to end: a live server, the official openai SDK, PyAV, its SQLite.

The server's models file adds `tiny-cam` (tests/engine/test_camera.py): the tiny LTX-2 with two camera
LoRAs built in code and saved as local safetensors files, one move whose file was never put there, and a
prompt move. Four small jobs in all (64x64, 1 s, same seed): no move, dolly_in, no move again, pan_left.
Whether the adapter was on is read two ways: what the LoRA layers applied at each denoising step (the
engine records it in the job's resolved settings, read here from the database), and the frames.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import openai
import pytest

from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH
from tests.api.test_videos import probe
from tests.conftest import LiveServer
from tests.engine.test_camera import MODEL, tiny_cam_file

SMALL = {"model": MODEL, "size": "64x64", "seconds": "1"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("camera")
    path = tiny_cam_file(root)
    # The shipped models too, so the test aliases (sora-2 -> tiny-ltx2) still reach a model.
    path.write_text(DEFAULT_REGISTRY_PATH.read_text() + "\n" + path.read_text())
    server = LiveServer(root / "data", MUTOSCOPE_MODELS_FILE=str(path))
    try:
        # A loaded 2-core machine can take over a minute to import diffusers; a server that never came up is
        # stopped all the same.
        server.start(timeout=240)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(srv):
    return srv.client()


def resolved(srv, video_id: str) -> dict:
    with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
        (value,) = db.execute("SELECT resolved FROM videos WHERE id = ?", (video_id,)).fetchone()
    return json.loads(value)


def frames(client, video_id: str) -> np.ndarray:
    return np.stack(probe(client.videos.download_content(video_id).read())["frames"]).astype(np.int16)


def create(client, camera: str | None = None, prompt: str = "a paper boat on a pond"):
    body = {"seed": 7, **({"camera": camera} if camera else {})}
    video = client.videos.create_and_poll(prompt=prompt, **SMALL, extra_body=body)
    assert video.status == "completed", video.error
    return video


def test_refusals_name_the_models_moves(srv, client):
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="a boat", **SMALL, extra_body={"camera": "zoom_in"})
    body = err.value.body
    assert body["param"] == "camera" and body["code"] == "invalid_camera"
    assert body["message"] == (f"Invalid camera move 'zoom_in' for model '{MODEL}'. Supported moves: dolly_in, "
                               "dolly_out, jib_up, pan_left.")
    # Through an alias, the message names the model as the caller did; the tiny Wan offers every move.
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="a boat", model="sora-2", extra_body={"camera": "crane_shot"})
    assert "for model 'sora-2'. Supported moves: static, dolly_in" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="a boat", **SMALL, extra_body={"camera": 5})
    assert err.value.body["param"] == "camera"
    # A move whose LoRA is not on this server: the fix, never where the file was expected.
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="a boat", **SMALL, extra_body={"camera": "jib_up"})
    body = err.value.body
    assert body["code"] == "model_not_available" and body["param"] == "camera"
    assert f"`mutoscope models pull {MODEL}`" in body["message"] and str(srv.data_dir.parent) not in body["message"]
    assert client.videos.list().data == []  # nothing was queued or charged


def test_model_object_lists_its_moves(srv):
    with srv.http() as h:
        model = h.get(f"/v1/models/{MODEL}").json()
    assert model["camera"] == [
        {"move": "dolly_in", "applied": "adapter", "installed": True},
        {"move": "dolly_out", "applied": "adapter", "installed": True},
        {"move": "jib_up", "applied": "adapter", "installed": False},
        {"move": "pan_left", "applied": "prompt", "installed": True}]


@pytest.fixture(scope="module")
def jobs(client):
    """Made in this order on the one worker: the adapter's job sits between two jobs without a move."""
    return {"before": create(client), "dolly": create(client, "dolly_in"), "after": create(client),
            "pan": create(client, "pan_left")}


def test_adapter_is_on_for_its_job_only(srv, client, jobs):
    dolly = jobs["dolly"]
    assert dolly.camera == {"move": "dolly_in", "applied": "adapter", "prompt": None, "lora": None, "scale": 1.0}
    assert dolly.prompt == "a paper boat on a pond"  # OpenAI's field stays what the caller wrote
    assert jobs["before"].camera is None and jobs["after"].camera is None
    # What the LoRA layers applied at every denoising step of each job.
    assert resolved(srv, dolly.id)["lora_active"] == ["camera_dolly_in"]
    assert resolved(srv, dolly.id)["camera"]["active_steps"] == 2
    assert resolved(srv, jobs["before"].id)["lora_active"] == []
    assert resolved(srv, jobs["after"].id)["lora_active"] == []
    # And in the pictures: the same seed and prompt with no move give the same clip before and after; the
    # adapter's job does not. Compared in luma, as decoded from the MP4s: each video carries its own id as an
    # invisible watermark (in chroma), and H.264 at 64x64 blurs the tiny model's noise, so "the same" is
    # within the encoder's own error (about 5 levels here), well under the adapter's change (about 16).
    luma = np.array([0.299, 0.587, 0.114])
    before, dolly_frames, after = (frames(client, jobs[k].id) @ luma for k in ("before", "dolly", "after"))
    same = np.abs(before - after).mean()
    moved = np.abs(before - dolly_frames).mean()
    assert moved > 2 * same, (same, moved)


def test_prompt_move_reports_the_folded_prompt(srv, jobs):
    pan = jobs["pan"]
    assert pan.camera == {"move": "pan_left", "applied": "prompt", "lora": None, "scale": None,
                          "prompt": "a paper boat on a pond. The camera pans to the left."}
    assert pan.prompt == "a paper boat on a pond"
    assert resolved(srv, pan.id)["lora_active"] == []


def test_remix_keeps_or_replaces_the_move(client, jobs):
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.remix(jobs["dolly"].id, prompt="at dusk", extra_body={"camera": "orbit_left"})
    assert err.value.body["param"] == "camera" and "Supported moves: dolly_in" in err.value.body["message"]
    remix = client.videos.remix(jobs["dolly"].id, prompt="at dusk")
    try:
        assert remix.camera == {"move": "dolly_in", "applied": None, "prompt": None, "lora": None, "scale": None}
    finally:
        client.videos.delete(remix.id)


def test_storyboard_shots_each_get_their_own_move(srv, client):
    shots = [{"prompt": "a paper boat on a pond", "seconds": "1", "camera": "pan_left"},
             {"prompt": "the boat drifts", "seconds": "1", "transition": "cut", "camera": "dolly_in"},
             {"prompt": "it sinks", "seconds": "1", "transition": "cut", "camera": "tilt_up"}]
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="boat", model=MODEL, size="64x64", extra_body={"storyboard": json.dumps(shots)})
    assert err.value.body["param"] == "storyboard[2].camera" and "Supported moves: dolly_in" in err.value.body["message"]
    board = client.videos.create(prompt="boat", model=MODEL, size="64x64",
                                 extra_body={"storyboard": json.dumps(shots[:2]), "seed": 7})
    board = client.videos.poll(board.id)
    assert board.status == "completed", board.error
    assert [s["camera"] for s in board.model_extra["shots"]] == ["pan_left", "dolly_in"]
    # The adapter was on for the second shot only; the first had its phrase folded in.
    first, second = resolved(srv, board.id)["storyboard"]["shots"]
    assert first["lora_active"] == [] and first["camera"]["applied"] == "prompt"
    assert first["camera"]["prompt"] == "a paper boat on a pond. The camera pans to the left."
    assert second["lora_active"] == ["camera_dolly_in"] and second["camera"]["active_steps"] == 2
