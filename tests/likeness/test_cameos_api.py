"""Cameos through a live server: verification job, consent at create, grants, takedown, audit chain.

Two users: the owner (the cameo's person) and mallory. Video creation uses the official openai SDK.
"""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import openai
import pytest

from mutoscope.media import encode_mp4

from tests.conftest import serve_live, wait_for
from tests.likeness.enrol import enrol

FAST = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, whisper_dir, clip_dir):
    yield from serve_live(tmp_path_factory, "cameo-srv", MUTOSCOPE_LIKENESS_WHISPER_MODEL=str(whisper_dir),
                          MUTOSCOPE_DEFAULT_PLAN="unlimited")


@pytest.fixture(scope="module")
def mallory(srv):
    return srv.cli("users", "create", "mallory").stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def cameo(srv, clip_dir):
    # enrol() retries when only the synthetic voice's checks fail (tests/likeness/enrol.py), under the handle
    # "eileen1" or "eileen2": tests use cameo["handle"], never "eileen".
    with srv.http() as h:
        done = enrol(h, clip_dir, "Eileen")
    assert done["handle"] in ("eileen", "eileen1", "eileen2")  # stored lower-case
    assert {c["name"] for c in done["verification"]["checks"]} >= {"one_face", "spoken_digits", "head_turns"}
    assert "embedding" not in str(done)
    return done


def test_challenge_is_single_use(srv):
    with srv.http() as h:
        ch = h.post("/v1/cameos/challenges").json()
        assert len(ch["digits"]) == 3 and ch["turns"] and "then your" in ch["instructions"]
        # Not a clip at all: refused before anything is spent, so the same challenge still works.
        junk = {"video": ("clip.mp4", b"not a video", "video/mp4")}
        refused = h.post("/v1/cameos", data={"handle": "once", "challenge_id": ch["id"]}, files=junk)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "video", refused.text
        # A real clip that shows nobody: verification starts (and fails); the challenge is spent.
        buf = io.BytesIO()
        encode_mp4(buf, np.random.default_rng(0).integers(0, 255, (12, 96, 128, 3), dtype=np.uint8), 12)
        files = {"video": ("clip.mp4", buf.getvalue(), "video/mp4")}
        first = h.post("/v1/cameos", data={"handle": "once", "challenge_id": ch["id"]}, files=files)
        assert first.status_code == 200 and first.json()["status"] == "verifying", first.text
        again = h.post("/v1/cameos", data={"handle": "once2", "challenge_id": ch["id"]}, files=files)
        assert again.status_code == 400 and again.json()["error"]["code"] == "challenge_expired"
        failed = wait_for(lambda: (c := h.get(f"/v1/cameos/{first.json()['id']}").json())["status"] != "verifying"
                          and c, timeout=300, interval=1)
        assert failed["status"] == "failed" and failed["verification"]["checks"][0]["redo"]


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_consent_flow(srv, cameo, mallory):
    owner, other = srv.client(), srv.client(mallory)
    # only_me: the owner may, mallory may not (by @handle or by characters id)
    mine = owner.videos.create(prompt=f"@{cameo['handle']} waves at the camera", seconds="4", extra_body=FAST)
    with pytest.raises(openai.PermissionDeniedError) as e:
        other.videos.create(prompt=f"@{cameo['handle']} waves at the camera", seconds="4", extra_body=FAST)
    assert _error(e.value)["code"] == "cameo_permission_denied"
    with pytest.raises(openai.PermissionDeniedError):
        other.videos.create(prompt="a wave", seconds="4", extra_body={**FAST, "characters": [{"id": cameo["id"]}]})
    # e-mail addresses are not mentions
    other.videos.create(prompt="write to eileen@example.com", seconds="4", extra_body=FAST)

    with srv.http() as h:
        assert h.post(f"/v1/cameos/{cameo['id']}", json={"policy": "approved", "blocked_terms": ["smoking"]}
                      ).json()["policy"] == "approved"
        assert h.post(f"/v1/cameos/{cameo['id']}/grants", json={"user": "mallory"}).status_code == 200
    with pytest.raises(openai.BadRequestError) as e:
        other.videos.create(prompt=f"@{cameo['handle']} smoking a pipe", seconds="4", extra_body=FAST)
    assert _error(e.value)["code"] == "cameo_preferences_violated"
    theirs = other.videos.create_and_poll(prompt=f"@{cameo['handle']} plays the piano", seconds="4", extra_body=FAST)
    assert theirs.status == "completed", theirs.error

    with srv.http() as h:
        uses = h.get(f"/v1/cameos/{cameo['id']}/videos").json()["data"]
        assert {u["video_id"] for u in uses} == {mine.id, theirs.id}
        td = h.post(f"/v1/cameos/{cameo['id']}/videos/{theirs.id}/takedown", json={"reason": "not me"})
        assert td.status_code == 200 and td.json()["taken_down_at"]
    with srv.http(mallory) as h:
        gone = h.get(f"/v1/videos/{theirs.id}/content")
    assert gone.status_code == 410 and gone.json()["error"]["message"] == "not me"

    with srv.http() as h:
        revoked = h.delete(f"/v1/cameos/{cameo['id']}/grants/mallory")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    with pytest.raises(openai.PermissionDeniedError):
        other.videos.create(prompt=f"@{cameo['handle']} again", seconds="4", extra_body=FAST)


def test_audit_chain_verifies_and_detects_an_edit(srv, cameo):
    with srv.http() as h:
        log = h.get("/v1/cameos/audit").json()["data"]
        mine = [r["action"] for r in log if r["cameo_id"] == cameo["id"]]
        assert mine[:2] == ["create", "verify"] and "deny" in mine and "use" in mine
        assert "embedding" not in str(log)
        assert h.get("/v1/cameos/audit/verify").json()["valid"] is True
        verify = next(r for r in log if r["cameo_id"] == cameo["id"] and r["action"] == "verify")
        with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
            db.execute("UPDATE cameo_audit SET action='grant' WHERE seq = ?", (verify["seq"],))
        bad = h.get("/v1/cameos/audit/verify").json()
        assert bad["valid"] is False and bad["first_bad_seq"] == verify["seq"]
        with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
            db.execute("UPDATE cameo_audit SET action='verify' WHERE seq = ?", (verify["seq"],))
        assert h.get("/v1/cameos/audit/verify").json()["valid"] is True


def test_delete_disables_at_once(srv, cameo, mallory):
    with srv.http() as h:
        d = h.delete(f"/v1/cameos/{cameo['id']}").json()
        assert d["deleted"] and d["purge_after"] > 0
        assert h.get(f"/v1/cameos/{cameo['id']}").status_code == 404
    with pytest.raises(openai.PermissionDeniedError):
        srv.client().videos.create(prompt=f"@{cameo['handle']} one last time", seconds="4", extra_body=FAST)
