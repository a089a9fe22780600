"""Extensions, edits and remix-by-conditioning end to end: a live server, the openai SDK, PyAV.

Generation is the expensive part on a shared 2-core CPU, so the module makes four videos in all (a
source, its extension, an edit of it, and an edit of an uploaded clip on the Wan family) and every
refusal is checked without generating anything.
"""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import openai
import pytest
from openai.types import Video

from mutoscope.media import encode_mp4
from tests.api.test_videos import probe
from tests.conftest import TEST_ALIASES, serve_live
from tests.web.conftest import signed_in_http

FAST = {"num_inference_steps": 2}
# The lineage limits are lowered so that refusing them needs no extra generation:
# the source plus one extension is the whole allowance, and 8 s is the longest lineage.
LIMITS = {"MUTOSCOPE_MAX_EXTENSIONS_PER_LINEAGE": "1", "MUTOSCOPE_MAX_LINEAGE_SECONDS": "8",
          "MUTOSCOPE_MODEL_ALIASES": json.dumps({**TEST_ALIASES, "wan-test": "tiny-wan"})}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from serve_live(tmp_path_factory, "ext", **LIMITS)


@pytest.fixture(scope="module")
def client(srv):
    return srv.client()


@pytest.fixture(scope="module")
def source(client):
    video = client.videos.create_and_poll(prompt="a paper boat on a pond", seconds="4", size="512x288",
                                          extra_body={**FAST, "seed": 3})
    assert video.status == "completed", video.error
    return video


@pytest.fixture(scope="module")
def extension(client, source):
    video = by_reference(client, "/videos/extensions", video={"id": source.id},
                         prompt="the boat drifts under a bridge", seconds="4", **FAST)
    assert video.status in ("queued", "in_progress")
    return client.videos.poll(video.id)


def blocks(frame: np.ndarray, n: int = 16) -> np.ndarray:
    h, w = frame.shape[0] // n * n, frame.shape[1] // n * n
    return frame[:h, :w].reshape(h // n, n, w // n, n, 3).mean(axis=(1, 3))


def by_reference(client, path: str, **body) -> Video:
    """POST a `video: {id}` reference through the SDK's own transport.

    openai 3.57's `videos.extend()` / `videos.edit()` send every `video` as a multipart file part and
    refuse a `{"id": ...}` reference client-side (RuntimeError from `extract_files`), so the SDK's
    generic `post` carries the JSON body the spec allows; uploads go through `videos.edit()`.
    """
    return client.post(path, body=body, cast_to=Video)


def clip_mp4(seconds: float, width: int = 160, height: int = 96, fps: float = 24.0) -> bytes:
    """A small moving-gradient MP4 made here, as a user's upload would be."""
    t = int(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.stack([np.stack([(xx * 2 + i * 4) % 256, yy * 2 % 256, np.full_like(xx, 90)], -1)
                       for i in range(t)]).astype(np.uint8)
    buf = io.BytesIO()
    encode_mp4(buf, frames, fps)
    return buf.getvalue()



def test_extension_stitches_source_and_continuation(client, source, extension):
    assert extension.status == "completed", extension.error
    assert extension.extended_from_video_id == source.id
    assert extension.remixed_from_video_id is None and extension.edited_from_video_id is None
    assert extension.seconds == "8"  # the stitched total, not the new segment
    assert (extension.size, extension.model) == (source.size, source.model)

    src = probe(client.videos.download_content(source.id).read())
    out = probe(client.videos.download_content(extension.id).read())
    assert (out["width"], out["height"]) == (512, 288) and out["acodec"] == "aac"
    assert len(out["frames"]) == len(src["frames"]) + round(4 * out["fps"]) == 192
    assert abs(out["duration"] - 8.0) < 0.1
    assert abs(out["audio_duration"] - len(out["frames"]) / out["fps"]) < 0.05
    # The first half is the source, re-encoded once: the tiny model's noise loses detail in H.264,
    # so compare 16x16 block means, which the encoder keeps.
    diff = np.abs(blocks(out["frames"][40]) - blocks(src["frames"][40])).mean()
    assert diff < 3, diff


def test_extension_lineage_limits_are_clear_400s(srv, client, source, extension):
    with pytest.raises(openai.BadRequestError) as err:  # a second extension in the lineage
        by_reference(client, "/videos/extensions", video={"id": extension.id}, prompt="and on", seconds="4")
    assert err.value.body["code"] == "extension_limit_reached"
    assert "at most 1" in err.value.body["message"]
    with srv.http() as h:  # multipart, as the SDK's videos.extend() sends it: 4 s + 8 s > 8 s per lineage
        r = h.post("/v1/videos/extensions", data={"video[id]": source.id, "prompt": "on", "seconds": "8"},
                   files={"unused": ("x", b"", "text/plain")})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "extension_limit_reached" and "8 s" in r.json()["error"]["message"]


def test_extension_refusals(srv, client):
    with pytest.raises(openai.NotFoundError):
        by_reference(client, "/videos/extensions", video={"id": "video_nope"}, prompt="more", seconds="4")
    with srv.http() as h:
        r = h.post("/v1/videos/extensions", json={"prompt": "more", "seconds": "4"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "video"



def test_edit_of_a_completed_video(client, source):
    video = by_reference(client, "/videos/edits", video={"id": source.id},
                         prompt="the same pond in winter, ice and snow", **FAST)
    assert video.edited_from_video_id == source.id
    done = client.videos.poll(video.id)
    assert done.status == "completed", done.error
    assert (done.size, done.seconds, done.model) == (source.size, source.seconds, source.model)
    out = probe(client.videos.download_content(done.id).read())
    assert len(out["frames"]) == 96 and out["acodec"] == "aac"  # LTX-2 makes sound
    assert abs(out["audio_duration"] - 4.0) < 0.05


def test_edit_of_an_uploaded_video_on_a_silent_family(srv, client):
    model = client.models.retrieve("wan-test")
    assert model.model_extra.get("has_audio") is False
    assert model.model_extra.get("edit_strength") == 0.7  # the models file's default, which this edit overrides
    video = client.videos.edit(video=("clip.mp4", clip_mp4(4.2), "video/mp4"), prompt="make it a watercolour",
                               extra_body={**FAST, "model": "wan-test", "edit_strength": 0.5})
    assert video.edited_from_video_id is None and video.model == "wan-test"
    # The upload's landscape shape at the size nearest its own 160x96, and the 4 s it covers.
    assert (video.size, video.seconds) == ("512x288", "4")
    done = client.videos.poll(video.id)
    assert done.status == "completed", done.error
    out = probe(client.videos.download_content(done.id).read())
    assert (out["width"], out["height"]) == (512, 288) and len(out["frames"]) == 96
    assert out["acodec"] is None  # Wan makes no sound, so the MP4 has no audio stream
    # The upload is kept as the job's input, under the new video's own prefix.
    assert (srv.data_dir / "assets" / "videos" / done.id / "input.mp4").exists()
    # The multipart `edit_strength` reached the engine, which used it in place of the model's own.
    assert stored(srv, done.id) == ({"edit_strength": 0.5}, {"edit_strength": 0.5})


def test_edit_refuses_bad_uploads(srv, client):
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.edit(video=("clip.mp4", b"\x00\x00\x00\x18ftypmp42 definitely not a video", "video/mp4"),
                           prompt="x")
    assert err.value.body["code"] == "invalid_video" and err.value.body["param"] == "video"
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.edit(video=("notes.txt", b"hello", "text/plain"), prompt="x")
    assert err.value.body["code"] == "invalid_video"
    with pytest.raises(openai.BadRequestError) as err:  # shorter than any duration the model makes
        client.videos.edit(video=("short.mp4", clip_mp4(1.0), "video/mp4"), prompt="x")
    assert err.value.body["code"] == "invalid_video" and "1.00 s" in err.value.body["message"]
    with srv.http() as h:
        r = h.post("/v1/videos/edits", json={"prompt": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "video"
    with pytest.raises(openai.NotFoundError):
        by_reference(client, "/videos/edits", video={"id": "video_nope"}, prompt="x")



def stored(srv, video_id: str) -> tuple[dict, dict]:
    """The job's stored `edit_strength` (its params) and the one the engine used (its resolved settings)."""
    with sqlite3.connect(srv.data_dir / "mutoscope.db", timeout=30) as db:
        params, resolved = db.execute("SELECT params, resolved FROM videos WHERE id = ?", (video_id,)).fetchone()
    return _strengths(params), _strengths(resolved)


def _strengths(raw: str | None) -> dict:
    return {k: v for k, v in json.loads(raw or "{}").items() if k.startswith("edit_strength")}


def video_count(srv) -> int:
    with sqlite3.connect(srv.data_dir / "mutoscope.db", timeout=30) as db:
        return db.execute("SELECT count(*) FROM videos").fetchone()[0]


def test_edit_strength_replaces_the_models_own(srv, client, source):
    video = by_reference(client, "/videos/edits", video={"id": source.id}, prompt="the pond at dusk",
                         edit_strength=0.35, **FAST)
    done = client.videos.poll(video.id)
    assert done.status == "completed", done.error
    assert stored(srv, done.id) == ({"edit_strength": 0.35}, {"edit_strength": 0.35})
    # Generate again (the web's retry) edits at the same strength; it need not render here.
    http, token = signed_in_http(srv.base_url, srv.api_key)
    r = http.post(f"/videos/{done.id}/retry", data={"csrf_token": token})
    assert r.status_code == 303, r.text
    again = r.headers["location"].rsplit("/", 1)[1]
    assert again != done.id and stored(srv, again)[0] == {"edit_strength": 0.35}
    client.videos.delete(again)


def test_remix_takes_an_edit_strength_too(srv, client, source):
    remix = client.videos.remix(source.id, prompt="the pond in autumn", extra_body={**FAST, "edit_strength": 0.9})
    done = client.videos.poll(remix.id)
    assert done.status == "completed", done.error
    assert stored(srv, done.id) == ({"edit_strength": 0.9}, {"edit_strength": 0.9})


@pytest.mark.parametrize("bad", [0, 1.5, "strong", "nan"])
def test_a_bad_edit_strength_is_a_400_before_anything_is_queued(srv, client, source, bad):
    before = video_count(srv)
    with pytest.raises(openai.BadRequestError) as err:
        by_reference(client, "/videos/edits", video={"id": source.id}, prompt="x", edit_strength=bad)
    assert err.value.body["param"] == "edit_strength" and "edit_strength" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:  # multipart, as an upload sends it
        client.videos.edit(video=("clip.mp4", clip_mp4(4.2), "video/mp4"), prompt="x",
                           extra_body={"edit_strength": str(bad)})
    assert err.value.body["param"] == "edit_strength"
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.remix(source.id, prompt="x", extra_body={"edit_strength": bad})
    assert err.value.body["param"] == "edit_strength"
    assert video_count(srv) == before
