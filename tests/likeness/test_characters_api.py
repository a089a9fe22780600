"""Characters (OpenAI's `POST/GET /v1/videos/characters`) through a live server and the openai SDK.

A faceless clip (colour noise) makes a character only its owner can see and use; a clip with a face is
refused unless the face is the caller's own verified cameo, and such a character follows the cameo's
consent (deleting the cameo disables it). Two users: the server's owner (enrols the astronaut's face as
a cameo through the real verification) and mallory.
"""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import openai
import pytest

from mutoscope.media import encode_mp4
from tests.conftest import serve_live
from tests.likeness.clips import build_clip
from tests.likeness.enrol import enrol

FAST = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, whisper_dir, clip_dir):
    yield from serve_live(tmp_path_factory, "characters-srv", MUTOSCOPE_LIKENESS_WHISPER_MODEL=str(whisper_dir),
                          MUTOSCOPE_DEFAULT_PLAN="unlimited")


@pytest.fixture(scope="module")
def mallory(srv) -> str:
    return srv.cli("users", "create", "mallory").stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def cameo(srv, clip_dir) -> dict:
    with srv.http() as h:
        return enrol(h, clip_dir, "eileen")


def _noise_clip(seed: int) -> bytes:
    buf = io.BytesIO()
    encode_mp4(buf, np.random.default_rng(seed).integers(0, 255, (12, 96, 128, 3), dtype=np.uint8), 12)
    return buf.getvalue()


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def _create(client, **extra):
    v = client.videos.create(prompt="a short scene", seconds="4", extra_body={**FAST, **extra})
    client.videos.delete(v.id)  # admission is what is tested; keep the shared CPU free
    return v


def test_faceless_character_is_private_to_its_owner(srv, mallory):
    owner, other = srv.client(), srv.client(mallory)
    made = owner.videos.create_character(name="Static", video=("noise.mp4", _noise_clip(0), "video/mp4"))
    assert made.id.startswith("char_") and made.name == "Static" and made.created_at > 0
    got = owner.videos.get_character(made.id)
    assert (got.id, got.name, got.created_at) == (made.id, made.name, made.created_at)
    assert set(got.model_dump()) == {"id", "name", "created_at"}

    # someone else's character is not found, to read or to use
    with pytest.raises(openai.NotFoundError) as e:
        other.videos.get_character(made.id)
    assert _error(e.value)["code"] == "character_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        _create(other, characters=[{"id": made.id}])
    assert (_error(e.value)["code"], _error(e.value)["param"]) == ("character_not_found", "characters")

    v = _create(owner, characters=[{"id": made.id}])
    # with no input_reference, the character's frame is the video's first frame (image-to-video)
    with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
        assert db.execute("SELECT input_key FROM videos WHERE id = ?", (v.id,)).fetchone()[0]


def test_trying_again_names_the_same_characters_and_asks_consent_again(srv):
    from tests.web.conftest import signed_in_http

    owner = srv.client()
    made = owner.videos.create_character(name="Kite", video=("kite.mp4", _noise_clip(7), "video/mp4"))
    first = owner.videos.create(prompt="a kite over dunes", seconds="4",
                                extra_body={**FAST, "characters": [{"id": made.id}]})
    assert owner.videos.poll(first.id, poll_interval_ms=200).status == "completed"
    web, token = signed_in_http(srv.base_url, srv.api_key)
    r = web.post(f"/videos/{first.id}/retry", data={"csrf_token": token})
    assert r.status_code == 303, r.text
    again = r.headers["location"].rsplit("/", 1)[1]
    owner.videos.delete(again)
    with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
        params, key = db.execute("SELECT params, input_key FROM videos WHERE id = ?", (again,)).fetchone()
    # the character, by id, and its frame as the first frame, as the first time
    assert json.loads(params)["characters"] == [made.id] and json.loads(params)["first_frame_from"] == "characters"
    assert key
    # Once the character is gone, trying again is refused on the page instead of reusing its stored frame.
    with srv.http() as h:
        assert h.delete(f"/v1/videos/characters/{made.id}").status_code == 200
    r = web.post(f"/videos/{first.id}/retry", data={"csrf_token": token})
    assert r.status_code == 400 and "character_not_found" in r.text, r.text[:500]
    assert len([v for v in owner.videos.list(limit=100).data if v.prompt == "a kite over dunes"]) == 1


def test_bad_requests(srv):
    with srv.http() as h:
        no_name = h.post("/v1/videos/characters", files={"video": ("n.mp4", _noise_clip(1), "video/mp4")})
        assert no_name.status_code == 400 and no_name.json()["error"]["param"] == "name"
        not_video = h.post("/v1/videos/characters", data={"name": "x"},
                           files={"video": ("n.mp4", b"not a video", "video/mp4")})
        assert not_video.status_code == 400 and not_video.json()["error"]["code"] == "invalid_video"
        assert h.get("/v1/videos/characters/char_nope").status_code == 404


def test_face_character_needs_the_callers_own_cameo(srv, mallory, cameo, clip_dir):
    owner, other = srv.client(), srv.client(mallory)
    eileen = build_clip(clip_dir / "character-eileen.mp4", digits=None).read_bytes()
    hopper = build_clip(clip_dir / "character-hopper.mp4", digits=None, faces=("hopper",)).read_bytes()
    # someone else's cameo (even with permission it would not be theirs), and a person who never enrolled
    for client, clip in ((other, eileen), (owner, hopper)):
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.create_character(name="Me", video=("me.mp4", clip, "video/mp4"))
        assert (_error(e.value)["code"], _error(e.value)["param"]) == ("likeness_not_permitted", "video")

    me = owner.videos.create_character(name="Me", video=("me.mp4", eileen, "video/mp4"))
    static = [owner.videos.create_character(name=f"Static {i}", video=("n.mp4", _noise_clip(i), "video/mp4"))
              for i in (2, 3)]
    # a face character stands for its cameo: using it is a use of the cameo, listed to its owner
    v = _create(owner, characters=[{"id": me.id}, {"id": static[0].id}])
    with srv.http() as h:
        assert v.id in {u["video_id"] for u in h.get(f"/v1/cameos/{cameo['id']}/videos").json()["data"]}
        log = h.get("/v1/cameos/audit").json()["data"]
        assert any(r["action"] == "character" and r["subject_id"] == me.id for r in log)
    # the same person twice is one; three different ones are too many
    _create(owner, characters=[{"id": me.id}, {"id": cameo["id"]}])
    with pytest.raises(openai.BadRequestError) as e:
        _create(owner, characters=[{"id": me.id}, {"id": static[0].id}, {"id": static[1].id}])
    assert _error(e.value)["code"] == "too_many_cameos"

    # deleting the cameo disables the character at once; faceless ones keep working
    with srv.http() as h:
        assert h.delete(f"/v1/cameos/{cameo['id']}").status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as e:
        _create(owner, characters=[{"id": me.id}])
    assert _error(e.value)["code"] == "cameo_permission_denied"
    assert owner.videos.get_character(me.id).name == "Me"
    _create(owner, characters=[{"id": static[1].id}])
