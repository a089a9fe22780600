"""Provenance end to end: a video made by a live server, downloaded with the openai SDK, verified over
POST /v1/verify and `mutoscope verify`."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from mutoscope.media import encode_mp4


@pytest.fixture(scope="module")
def made(client, tmp_path_factory):
    video = client.videos.create_and_poll(prompt="a lighthouse at dusk", seconds="4",
                                          extra_body={"num_inference_steps": 2, "seed": 11})
    assert video.status == "completed", video.error
    path = tmp_path_factory.mktemp("verify") / "made.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    return video, path


def _verify(server, path, key=None) -> httpx.Response:
    with server.http(key) as h, open(path, "rb") as f:
        return h.post("/v1/verify", files={"file": ("clip.mp4", f, "video/mp4")})


def test_generated_video_verifies_with_its_id(server, made):
    video, path = made
    r = _verify(server, path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["c2pa"]["state"] == "trusted", body["c2pa"]
    assert body["c2pa"]["video_id"] == video.id
    assert body["c2pa"]["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert body["watermark"]["found"] and body["watermark"]["video_id"] == video.id
    assert body["video"] == {"origin": "this_server", "id": video.id, "status": "completed", "deleted": False,
                             "taken_down": False}


def test_another_user_learns_existence_but_not_the_prompt(server, made, other_user_key):
    video, path = made
    body = _verify(server, path, other_user_key).json()
    assert body["video"]["origin"] == "this_server" and body["video"]["id"] == video.id
    assert "lighthouse" not in json.dumps(body)


def test_file_from_elsewhere_is_unknown_not_an_error(server, tmp_path):
    plain = tmp_path / "elsewhere.mp4"
    encode_mp4(plain, np.full((6, 256, 256, 3), 90, np.uint8), 24)
    r = _verify(server, plain)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["c2pa"]["state"] == "absent" and not body["watermark"]["found"]
    assert body["video"]["origin"] == "unknown"


def test_verify_needs_a_key_and_a_file(server, made):
    with open(made[1], "rb") as f:
        assert httpx.post(server.base_url + "/v1/verify", files={"file": f}).status_code == 401
    with server.http() as h:
        r = h.post("/v1/verify", data={"nothing": "here"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"


def test_cli_verify(server, made):
    video, path = made
    out = server.cli("verify", str(path), "--json")
    body = json.loads(out.stdout)
    assert body["c2pa"]["state"] == "trusted" and body["video"]["origin"] == "this_server"
    text = server.cli("verify", str(path)).stdout
    assert "trusted" in text and video.id in text


def test_remix_carries_its_source_as_ingredient(server, client, made, tmp_path):
    video, _ = made
    remix = client.videos.remix(video.id, prompt="the same lighthouse at dawn")
    remix = client.videos.poll(remix.id)
    assert remix.status == "completed", remix.error
    path = tmp_path / "remix.mp4"
    client.videos.download_content(remix.id).write_to_file(path)
    c2pa = _verify(server, path).json()["c2pa"]
    assert c2pa["state"] == "trusted" and c2pa["video_id"] == remix.id
    assert c2pa["source_video_id"] == video.id and c2pa["ingredients"] == [f"{video.id}.mp4"]
