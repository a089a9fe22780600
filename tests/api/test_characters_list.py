"""Listing and deleting characters (Mutoscope's extensions to OpenAI's `/v1/videos/characters`), through the
openai SDK's generic `get`/`delete` on the shared server.

Faceless clips (colour noise) need no cameo, so these run on every install. Each test user is new, so other
modules' characters on the shared server never show up in these lists.
"""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest

from mutoscope.media import encode_mp4


def _noise_clip(seed: int) -> bytes:
    buf = io.BytesIO()
    encode_mp4(buf, np.random.default_rng(seed).integers(0, 255, (12, 96, 128, 3), dtype=np.uint8), 12)
    return buf.getvalue()


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


@pytest.fixture(scope="module")
def users(server):
    return [server.client(server.cli("users", "create", name).stdout.strip().splitlines()[-1])
            for name in ("char-lister", "char-other")]


def _list(client, **params) -> dict:
    return client.get("/videos/characters", cast_to=object, options={"params": params})


def test_list_pages_like_the_video_list_and_is_owner_scoped(users):
    alice, bob = users
    made = [alice.videos.create_character(name=f"Prop {i}", video=("n.mp4", _noise_clip(i), "video/mp4"))
            for i in range(3)]
    theirs = bob.videos.create_character(name="Bob's", video=("n.mp4", _noise_clip(9), "video/mp4"))

    # `/characters` is its own route, not a video id.
    full = _list(alice)
    assert full["object"] == "list" and [c["id"] for c in full["data"]] == [c.id for c in reversed(made)]
    assert set(full["data"][0]) == {"id", "name", "created_at"} and full["has_more"] is False
    assert (full["first_id"], full["last_id"]) == (made[2].id, made[0].id)

    page = _list(alice, limit=2)
    assert [c["id"] for c in page["data"]] == [made[2].id, made[1].id] and page["has_more"] is True
    rest = _list(alice, limit=2, after=page["last_id"])
    assert [c["id"] for c in rest["data"]] == [made[0].id] and rest["has_more"] is False
    assert [c["id"] for c in _list(alice, order="asc")["data"]] == [c.id for c in made]

    # Someone else's id as a cursor is an empty page, not a peek at their list.
    assert _list(alice, after=theirs.id) == {"object": "list", "data": [], "first_id": None, "last_id": None,
                                             "has_more": False}
    assert [c["id"] for c in _list(bob)["data"]] == [theirs.id]

    for bad in ({"limit": 101}, {"limit": -1}, {"order": "sideways"}, {"after": "x" * 65}):
        with pytest.raises(openai.BadRequestError) as e:
            _list(alice, **bad)
        assert set(_error(e.value)) == {"message", "type", "param", "code"}


def test_delete_removes_the_character_and_its_frame(server, users):
    alice, bob = users
    made = alice.videos.create_character(name="Doomed", video=("n.mp4", _noise_clip(5), "video/mp4"))
    frames = [p for p in server.data_dir.rglob("*") if made.id in str(p) and p.is_file()]
    assert frames, "the character's frame should be stored"

    # Someone else's character: not found, and still there afterwards.
    with pytest.raises(openai.NotFoundError) as e:
        bob.delete(f"/videos/characters/{made.id}", cast_to=object)
    assert _error(e.value)["code"] == "character_not_found"
    assert alice.videos.get_character(made.id).id == made.id

    gone = alice.delete(f"/videos/characters/{made.id}", cast_to=object)
    assert gone == {"id": made.id, "object": "video.character.deleted", "deleted": True}
    assert not any(p.exists() for p in frames)
    with pytest.raises(openai.NotFoundError):
        alice.videos.get_character(made.id)
    with pytest.raises(openai.NotFoundError):
        alice.delete(f"/videos/characters/{made.id}", cast_to=object)
    assert made.id not in [c["id"] for c in _list(alice)["data"]]
    # A video can no longer name it; nothing is queued.
    with pytest.raises(openai.BadRequestError) as e:
        alice.videos.create(prompt="a scene", seconds="4", size="1280x720", extra_body={"characters": [{"id": made.id}]})
    assert (_error(e.value)["code"], _error(e.value)["param"]) == ("character_not_found", "characters")
    assert alice.videos.list().data == []
