"""Extending an uploaded clip through the official SDK (`videos.extend(video=<file>)`, multipart) and a finished
video by id (JSON): the clip is checked as an edit's upload is, fitted to the output size at the model's frame
rate, and the new part is stitched after it."""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest
from openai.types import Video

from mutoscope.media import encode_mp4
from mutoscope.media.probe import read_frames
from tests.api.test_videos import probe

FAST = {"num_inference_steps": 2}


def clip(seconds: float = 1.0, fps: int = 30, size: tuple[int, int] = (320, 180)) -> bytes:
    """A red clip with a white bar in its last frames, so its frames are recognisable after the stitch."""
    w, h = size
    frames = np.zeros((round(seconds * fps), h, w, 3), np.uint8)
    frames[..., 0] = 200
    out = io.BytesIO()
    encode_mp4(out, frames, fps)
    return out.getvalue()


@pytest.fixture(scope="module")
def extended(client):
    video = client.videos.extend(video=("clip.mp4", clip(), "video/mp4"), prompt="the red room fades to night",
                                 seconds="4", extra_body=FAST)
    assert video.status in ("queued", "in_progress") and video.extended_from_video_id is None
    return client.videos.poll(video.id)


def test_an_uploaded_clip_is_continued_and_stitched_in_front(client, extended):
    assert extended.status == "completed", extended.error
    # The 320x180 clip gets the model's landscape size nearest it; 1 s of clip plus 4 s of new video.
    assert extended.size == "512x288" and extended.seconds == "5"
    data = client.videos.download_content(extended.id).read()
    info = probe(data)
    assert (info["width"], info["height"]) == (512, 288) and abs(info["duration"] - 5.0) < 0.1
    first = read_frames(io.BytesIO(data), count=1)[0].astype(float)
    assert first[..., 0].mean() > 150 and first[..., 1].mean() < 60  # the upload's red, not generated noise


def test_a_finished_video_is_extended_by_id_as_json(client, extended):
    # The installed SDK's `videos.extend` sends only multipart; its generic post sends the spec's JSON form.
    video = client.post("/videos/extensions", cast_to=Video, body={"video": {"id": extended.id},
                                                                   "prompt": "and the night goes on",
                                                                   "seconds": "4", **FAST})
    assert video.extended_from_video_id == extended.id
    done = client.videos.poll(video.id)
    assert done.status == "completed" and done.seconds == "9" and done.size == "512x288"


def test_an_upload_is_refused_as_an_edits_upload_is(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.extend(video=("notes.txt", b"not a video", "text/plain"), prompt="p", seconds="4")
    assert e.value.body["param"] == "video" and e.value.body["code"] == "invalid_video"
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.extend(video=("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "video/mp4"), prompt="p",
                             seconds="4")
    assert e.value.body["code"] == "invalid_video"
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.extend(video=("clip.mp4", clip(), "video/mp4"), prompt="p", seconds="4",
                             extra_body={"size": "640x480"})
    assert e.value.body["param"] == "size"
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/videos/extensions", cast_to=Video, body={"video": {"id": "video_" + "0" * 24}, "prompt": "p",
                                                               "seconds": "4", "size": "512x288"})
    assert e.value.body["param"] == "size"
