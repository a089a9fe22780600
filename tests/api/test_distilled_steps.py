"""A distilled model runs only its own schedule: a `num_inference_steps` override that differs from its length is
refused at create with a 400 naming the param, before anything is queued or charged, on every route that makes
a video (create, storyboards, remix, extensions, edits). A live server, the openai SDK, one real render (the
source the derived routes need)."""

from __future__ import annotations

import json

import openai
import pytest

from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH
from tests.api.test_extensions_edits import by_reference, clip_mp4
from tests.conftest import TEST_ALIASES, serve_live

MODEL = "tiny-fixed"
# The tiny LTX-2 components on a fixed 8-sigma schedule (the shipped `sora-2` entry's stage-1 sigmas).
DISTILLED = """
[[models]]
name = "tiny-fixed"
family = "ltx2"
weights = "builtin:tiny-ltx2"
fps = 24
sizes = ["160x96"]
seconds = ["4"]
steps = 8
guidance = 1.0
has_audio = true
license = "Apache-2.0"
memory = "full"
dtype = "float32"
test_model = true

[models.pipeline_kwargs]
sigmas = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875]
stg_scale = 0.0
modality_scale = 1.0
audio_guidance_scale = 1.0
audio_stg_scale = 0.0
audio_modality_scale = 1.0
max_sequence_length = 64
"""
WRONG = {"num_inference_steps": 5}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("distilled")
    (root / "models.toml").write_text(DEFAULT_REGISTRY_PATH.read_text() + DISTILLED)
    yield from serve_live(tmp_path_factory, "distilled", root=root, MUTOSCOPE_MODELS_FILE=str(root / "models.toml"),
                          MUTOSCOPE_MODEL_ALIASES=json.dumps(TEST_ALIASES))


@pytest.fixture(scope="module")
def client(srv):
    return srv.client()


@pytest.fixture(scope="module")
def source(client):
    """A video of the distilled model, made with its own step count (which is allowed)."""
    video = client.videos.create_and_poll(prompt="a paper boat on a pond", model=MODEL, seconds="4",
                                          size="160x96", extra_body={"num_inference_steps": 8})
    assert video.status == "completed", video.error
    return video


def usage(client) -> dict:
    return client.get("/usage", cast_to=object)


def assert_refused(e: pytest.ExceptionInfo) -> None:
    body = e.value.body
    assert e.value.status_code == 400 and body["type"] == "invalid_request_error"
    assert body["param"] == "num_inference_steps" and body["code"] == "unsupported_steps"
    assert "fixed 8-step schedule" in body["message"] and "(got 5)" in body["message"]


def test_every_route_refuses_an_override_of_the_fixed_schedule_before_queueing(client, source):
    before_ids = {v.id for v in client.videos.list(limit=100)}
    before = usage(client)
    refusals = [
        lambda: client.videos.create(prompt="a boat", model=MODEL, seconds="4", size="160x96", extra_body=WRONG),
        lambda: client.videos.create(prompt="a boat", model=MODEL, size="160x96",
                                     extra_body={**WRONG, "storyboard": [{"prompt": "a boat", "seconds": "4"}]}),
        lambda: client.videos.remix(source.id, prompt="a boat at night", extra_body=WRONG),
        lambda: by_reference(client, "/videos/extensions", video={"id": source.id}, prompt="and on", seconds="4",
                             **WRONG),
        lambda: by_reference(client, "/videos/edits", video={"id": source.id}, prompt="in watercolour", **WRONG),
        lambda: client.videos.edit(video=("clip.mp4", clip_mp4(4.0), "video/mp4"), prompt="in watercolour",
                                   extra_body={**WRONG, "model": MODEL}),
    ]
    for refuse in refusals:
        with pytest.raises(openai.BadRequestError) as e:
            refuse()
        assert_refused(e)
    assert {v.id for v in client.videos.list(limit=100)} == before_ids  # no row queued
    after = usage(client)
    assert (after["reserved"], after["spent"]) == (before["reserved"], before["spent"])  # nothing reserved


def test_the_schedules_own_length_or_none_is_admitted(client, source):
    remix = client.videos.remix(source.id, prompt="a boat at dusk")
    assert remix.status in ("queued", "in_progress", "completed")
    client.videos.delete(client.videos.poll(remix.id).id)
