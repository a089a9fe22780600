"""Boundaries of a live server: who may manage which account, which files other local users can read,
and which model names an error shows.

- Roles: the owner manages everyone; an admin manages members only (and its own keys): it cannot mint
  the owner a key, revoke the owner's key, disable the owner, promote itself or grant admin/owner (403);
  the last enabled owner cannot be demoted (409). A member does not see the admin API (404).
- Data files: the server starts on a data folder left 0755 with a database and a session secret left
  0644 (an install made before the rule) and tightens them: folder 0700, database, -wal and -shm,
  owner key, session secret, signing keys and stored assets 0600.
- Model names: a bad size for `sora-2` names `sora-2`, not the test model it resolves to; a request for
  an alias whose weights are missing is a 400 naming the alias, its pull command and no server path, and
  so is a remix, extension or edit of a video whose model is no longer installed; a job whose weights
  break after admission fails, naming the alias and no server path.
"""

from __future__ import annotations

import json
import sqlite3
import stat

import openai
import pytest

from tests.conftest import PARTIAL_MODEL, TEST_ALIASES, LiveServer, partial_weights_models_file

FAST = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("boundaries")
    data = root / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    sqlite3.connect(data / "mutoscope.db").close()  # an empty database, as an older install left it
    (data / "mutoscope.db").chmod(0o644)
    (data / "web-session-secret").write_text("s" * 64 + "\n")
    (data / "web-session-secret").chmod(0o644)
    # "studio" resolves to a real model whose weights this machine does not have; "patchy" to one whose
    # weights folder is half there (admitted, then fails in the worker).
    aliases = json.dumps({**TEST_ALIASES, "studio": "ltx-2", "patchy": PARTIAL_MODEL})
    s = LiveServer(data, MUTOSCOPE_MODEL_ALIASES=aliases,
                   MUTOSCOPE_MODELS_FILE=str(partial_weights_models_file(root))).start()
    yield s
    s.stop()


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _error(r) -> dict:
    return r.json()["error"]


@pytest.fixture(scope="module")
def people(srv) -> dict:
    """The owner's id and key id, an admin and a member, made by the owner."""
    with srv.http() as h:
        users = h.get("/v1/admin/users").json()["data"]
        owner = next(u for u in users if u["role"] == "owner")
        owner_key = next(k for k in h.get("/v1/admin/keys").json()["data"] if k["user_id"] == owner["id"])
        admin = h.post("/v1/admin/users", json={"name": "ada", "role": "admin"}).json()
        member = h.post("/v1/admin/users", json={"name": "max"}).json()
    return {"owner": owner, "owner_key": owner_key, "admin": admin, "member": member}


def test_admin_cannot_touch_the_owner_or_promote_itself(srv, people):
    owner, admin = people["owner"], people["admin"]
    with srv.http(admin["api_key"]) as h:
        refused = [
            h.post(f"/v1/admin/users/{owner['id']}/keys", json={"name": "mine now"}),
            h.post(f"/v1/admin/users/{admin['id']}", json={"role": "owner"}),
            h.post(f"/v1/admin/users/{owner['id']}", json={"disabled": True}),
            h.post(f"/v1/admin/users/{owner['id']}", json={"plan": "free"}),
            h.delete(f"/v1/admin/keys/{people['owner_key']['id']}"),
            h.post("/v1/admin/users", json={"name": "eve", "role": "owner"}),
            h.post("/v1/admin/users", json={"name": "eve", "role": "admin"}),
            h.post(f"/v1/admin/users/{people['member']['id']}", json={"role": "admin"}),
        ]
        for r in refused:
            assert r.status_code == 403, (r.request.url, r.text)
            assert _error(r)["code"] == "permission_denied" and "api_key" not in r.text
        users = {u["id"]: u for u in h.get("/v1/admin/users").json()["data"]}
    assert users[admin["id"]]["role"] == "admin" and users[owner["id"]]["disabled"] is False
    assert "eve" not in {u["name"] for u in users.values()}
    with srv.http() as h:  # the owner's key still works: nothing was revoked
        assert h.get("/v1/admin/keys").status_code == 200


def test_admin_manages_members_and_its_own_keys(srv, people):
    member, admin = people["member"], people["admin"]
    with srv.http(admin["api_key"]) as h:
        assert h.post(f"/v1/admin/users/{member['id']}", json={"plan": "pro"}).json()["plan"] == "pro"
        key = h.post(f"/v1/admin/users/{member['id']}/keys", json={"name": "laptop"}).json()["api_key"]
        assert h.post(f"/v1/admin/users/{admin['id']}/keys", json={"name": "rotated"}).status_code == 200
        new = h.post("/v1/admin/users", json={"name": "mia"})
        assert new.status_code == 200 and new.json()["role"] == "member"
        prefix = key[:12]
        key_id = next(k["id"] for k in h.get("/v1/admin/keys").json()["data"] if k["prefix"] == prefix)
        assert h.delete(f"/v1/admin/keys/{key_id}").status_code == 200
    with srv.http(member["api_key"]) as h:  # to a member the admin API does not exist
        r = h.get("/v1/admin/users")
        assert r.status_code == 404 and _error(r)["code"] == "not_found"


def test_only_the_owner_grants_owner_and_one_owner_stays(srv, people):
    owner, admin = people["owner"], people["admin"]
    with srv.http() as h:
        alone = h.post(f"/v1/admin/users/{owner['id']}", json={"role": "member"})
        assert alone.status_code == 409 and _error(alone)["code"] == "last_owner", alone.text
        assert h.post(f"/v1/admin/users/{owner['id']}", json={"disabled": True}).status_code == 409
        promoted = h.post(f"/v1/admin/users/{admin['id']}", json={"role": "owner"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "owner"
        assert h.post(f"/v1/admin/users/{admin['id']}", json={"role": "admin"}).json()["role"] == "admin"


def test_data_files_are_private(srv):
    client = srv.client()
    video = client.videos.create_and_poll(prompt="a lighthouse at dusk", seconds="4", extra_body=FAST)
    assert video.status == "completed", video.error
    data = srv.data_dir
    assert _mode(data) == 0o700
    assert _mode(data / "assets") == 0o700 and _mode(data / "provenance") == 0o700
    for name in ("mutoscope.db", "mutoscope.db-wal", "mutoscope.db-shm", "owner-api-key", "web-session-secret",
                 "provenance/signer.key", "provenance/ca.key"):
        assert _mode(data / name) == 0o600, name
    stored = [p for p in (data / "assets").rglob("*") if p.is_file() and ".tmp" not in p.parts]
    assert stored and {_mode(p) for p in stored} == {0o600}
    # Jobs' scratch folders live in the 0700 .tmp folder, out of other users' reach like the rest.
    assert _mode(data / "assets" / ".tmp") == 0o700
    assert {_mode(p) for p in (data / "assets").rglob("*") if p.is_dir() and ".tmp" not in p.parts} == {0o700}


def test_errors_name_the_model_the_caller_used(srv):
    client = srv.client()
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="wide", model="sora-2", size="1792x1024", seconds="4")
    message = e.value.response.json()["error"]["message"]
    assert "'sora-2'" in message and "tiny-ltx2" not in message, message

    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="no weights here", model="studio", seconds="4")
    error = e.value.body
    assert error["code"] == "model_not_available" and error["param"] == "model"
    assert "`mutoscope models pull studio`" in error["message"], error
    assert "ltx-2" not in error["message"] and str(srv.data_dir.parent) not in error["message"], error

    failed = client.videos.create_and_poll(prompt="half there", model="patchy", seconds="4")
    assert failed.status == "failed" and failed.error.code == "model_not_available"
    message = failed.error.message
    assert "patchy" in message and PARTIAL_MODEL not in message, message
    assert str(srv.data_dir.parent) not in message and "/" not in message.split("`")[0], message


def test_derived_videos_of_a_model_no_longer_installed_are_refused(srv):
    client = srv.client()
    # A size "studio" (ltx-2) offers too, so what is refused below is the missing weights, not the size.
    done = client.videos.create_and_poll(prompt="source", size="720x1280", extra_body=FAST)
    assert done.status == "completed"
    clip = client.videos.download_content(done.id).read()
    # Its model's weights were removed since, as `mutoscope models rm` does to a pulled model (the tiny
    # models cannot be removed): the row now names a model without weights.
    with sqlite3.connect(srv.data_dir / "mutoscope.db", timeout=30) as db:
        db.execute("UPDATE videos SET model = 'studio' WHERE id = ?", (done.id,))
    with srv.http() as h:
        before = len(h.get("/v1/videos", params={"limit": 100}).json()["data"])
        for path, body in [(f"/v1/videos/{done.id}/remix", {"prompt": "again"}),
                           ("/v1/videos/extensions", {"video": {"id": done.id}, "prompt": "on", "seconds": "4"}),
                           ("/v1/videos/edits", {"video": {"id": done.id}, "prompt": "other"})]:
            r = h.post(path, json=body)
            assert r.status_code == 400 and _error(r)["code"] == "model_not_available", (path, r.text)
            assert "`mutoscope models pull studio`" in _error(r)["message"]
        r = h.post("/v1/videos/edits", data={"prompt": "other", "model": "studio"},
                   files={"video": ("clip.mp4", clip, "video/mp4")})
        assert r.status_code == 400 and _error(r)["code"] == "model_not_available", r.text
        assert len(h.get("/v1/videos", params={"limit": 100}).json()["data"]) == before  # no job was made
