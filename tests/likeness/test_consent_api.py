"""Consent through a live server, with two users made by the admin API and the official openai SDK:
use with and without permission, approval, revocation while a job is queued and while it runs
(the job fails `cameo_permission_denied` and is refunded), remixes, extensions and edits inherit a
video's cameos, takedown by the owner, the likeness guard on `input_reference` and on an uploaded
edit video, and the audit chain.

One cameo per module, verified by the real pipeline (astronaut clip with espeak-ng speech).
Generated videos are few and tiny (2 denoising steps) except the one that must still be running
when its permission is revoked (40 steps).
"""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import openai
import pytest
from PIL import Image

from tests.conftest import serve_live, wait_for
from tests.likeness.enrol import enrol, user_keys

FAST = {"num_inference_steps": 2}
SLOW = {"num_inference_steps": 40}  # long enough on CPU to revoke while it runs
PORTRAIT = "720x1280"  # the fitted image keeps the astronaut's face (a landscape crop would cut it off)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, whisper_dir, clip_dir):
    yield from serve_live(tmp_path_factory, "consent-srv", MUTOSCOPE_LIKENESS_WHISPER_MODEL=str(whisper_dir))


@pytest.fixture(scope="module")
def keys(srv) -> dict[str, str]:
    return user_keys(srv, ("eileen", "mallory"), "unlimited")


@pytest.fixture(scope="module")
def cameo(srv, keys, clip_dir) -> dict:
    with srv.http(keys["eileen"]) as h:
        return enrol(h, clip_dir, "eileen")


def _code(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _wait_status(client, video_id: str, *statuses: str, timeout: float = 300):
    return wait_for(lambda: (v := client.videos.retrieve(video_id)).status in statuses and v, timeout=timeout,
                    interval=0.3)


def _grant(srv, keys, cameo, user: str | None = "mallory", policy: str = "approved") -> None:
    with srv.http(keys["eileen"]) as h:
        assert h.post(f"/v1/cameos/{cameo['id']}", json={"policy": policy}).status_code == 200
        if user:
            assert h.post(f"/v1/cameos/{cameo['id']}/grants", json={"user": user}).status_code == 200


def _revoke(srv, keys, cameo, user: str = "mallory") -> dict:
    with srv.http(keys["eileen"]) as h:
        r = h.delete(f"/v1/cameos/{cameo['id']}/grants/{user}")
    assert r.status_code == 200, r.text
    return r.json()


def _usage(srv, key: str) -> dict:
    with srv.http(key) as h:
        return h.get("/v1/usage").json()


def test_permission_then_revoke_while_queued_and_while_running(srv, keys, cameo):
    mallory = srv.client(keys["mallory"])
    # without permission: refused at create, by @handle and by characters id
    with pytest.raises(openai.PermissionDeniedError) as e:
        mallory.videos.create(prompt=f"@{cameo['handle']} waves", seconds="4", extra_body=FAST)
    assert _code(e.value)["code"] == "cameo_permission_denied"
    with pytest.raises(openai.PermissionDeniedError):
        mallory.videos.create(prompt="a wave", seconds="4", extra_body={**FAST, "characters": [{"id": cameo["id"]}]})

    # approved: accepted. One worker, so the second job waits behind the first.
    _grant(srv, keys, cameo)
    running = mallory.videos.create(prompt=f"@{cameo['handle']} on the moon", seconds="4", extra_body=SLOW)
    queued = mallory.videos.create(prompt=f"@{cameo['handle']} waves", seconds="4", extra_body=FAST)
    _wait_status(mallory, running.id, "in_progress")
    assert mallory.videos.retrieve(queued.id).status == "queued"
    assert _usage(srv, keys["mallory"])["reserved"] == 8

    revoked = _revoke(srv, keys, cameo)
    # queued: failed at once, no need to wait for a worker
    assert revoked["failed_video_ids"] == [queued.id]
    q = mallory.videos.retrieve(queued.id)
    assert q.status == "failed" and q.error.code == "cameo_permission_denied"
    # running: it finishes denoising, then the re-check before publishing fails it
    r = _wait_status(mallory, running.id, "completed", "failed")
    assert r.status == "failed" and r.error.code == "cameo_permission_denied", r
    with srv.http(keys["mallory"]) as h:
        assert h.get(f"/v1/videos/{running.id}/content").status_code == 400  # never published
    usage = _usage(srv, keys["mallory"])
    assert usage["reserved"] == 0 and usage["spent"] == 0 and usage["active_jobs"] == 0


def test_remix_inherits_cameos_and_owner_takes_down(srv, keys, cameo):
    _grant(srv, keys, cameo)
    mallory = srv.client(keys["mallory"])
    v = mallory.videos.create_and_poll(prompt=f"@{cameo['handle']} plays the piano", seconds="4", extra_body=FAST)
    assert v.status == "completed", v.error

    with srv.http(keys["eileen"]) as h:
        uses = {u["video_id"]: u for u in h.get(f"/v1/cameos/{cameo['id']}/videos").json()["data"]}
    assert v.id in uses and uses[v.id]["user_id"]

    mp4 = mallory.videos.download_content(v.id).read()
    assert _verify(srv, mp4)["taken_down"] is False

    _revoke(srv, keys, cameo)
    # the remix's prompt names nobody, but its source shows @eileen
    with pytest.raises(openai.PermissionDeniedError) as e:
        mallory.videos.remix(v.id, prompt="the same, at night")
    assert _code(e.value)["code"] == "cameo_permission_denied"

    with srv.http(keys["eileen"]) as h:
        td = h.post(f"/v1/cameos/{cameo['id']}/videos/{v.id}/takedown", json={"reason": "I never played piano"})
        assert td.status_code == 200 and td.json()["taken_down_at"]
    with srv.http(keys["mallory"]) as h:
        gone = h.get(f"/v1/videos/{v.id}/content")
    assert gone.status_code == 410
    assert gone.json()["error"]["message"] == "I never played piano"
    assert gone.json()["error"]["code"] == "video_taken_down"
    # the file's provenance points back here, and /v1/verify says the video was taken down
    origin = _verify(srv, mp4)
    assert (origin["origin"], origin["id"], origin["taken_down"]) == ("this_server", v.id, True), origin


def _verify(srv, mp4: bytes) -> dict:
    with srv.http() as h:
        r = h.post("/v1/verify", files={"file": ("clip.mp4", mp4, "video/mp4")})
    assert r.status_code == 200, r.text
    return r.json()["video"]


def test_input_reference_guard(srv, keys, cameo):
    import matplotlib.cbook
    import skimage.data

    astronaut = _png(skimage.data.astronaut())  # eileen's verified face
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = _png(np.asarray(Image.open(f).convert("RGB")))  # a person with no cameo here
    faceless = _png(skimage.data.chelsea())  # a cat
    _grant(srv, keys, cameo, user=None, policy="only_me")
    eileen, mallory = srv.client(keys["eileen"]), srv.client(keys["mallory"])

    for who, image in ((mallory, astronaut), (eileen, hopper)):
        with pytest.raises(openai.BadRequestError) as e:
            who.videos.create(prompt="a portrait comes alive", seconds="4", size=PORTRAIT, extra_body=FAST,
                              input_reference=("face.png", image, "image/png"))
        err = _code(e.value)
        assert err["code"] == "likeness_not_permitted" and err["param"] == "input_reference", err

    made = []
    own = eileen.videos.create(prompt="a portrait comes alive", seconds="4", size=PORTRAIT, extra_body=FAST,
                               input_reference=("face.png", astronaut, "image/png"))
    made.append((eileen, own.id))
    made.append((mallory, mallory.videos.create(prompt="a cat", seconds="4", size=PORTRAIT, extra_body=FAST,
                                                input_reference=("cat.png", faceless, "image/png")).id))
    # the matched face binds the video to the cameo's consent, like an @mention
    with srv.http(keys["eileen"]) as h:
        assert own.id in {u["video_id"] for u in h.get(f"/v1/cameos/{cameo['id']}/videos").json()["data"]}
    for client, vid in made:  # these need not render: keep the shared CPU free
        client.videos.delete(vid)


def _by_reference(client, path: str, **body):
    """POST a `video: {id}` reference: the SDK's extend()/edit() only upload files (tests/api/test_extensions_edits.py)."""
    from openai.types import Video

    return client.post(path, body=body, cast_to=Video)


def _uses(srv, keys, cameo) -> set[str]:
    with srv.http(keys["eileen"]) as h:
        return {u["video_id"] for u in h.get(f"/v1/cameos/{cameo['id']}/videos").json()["data"]}


def test_extensions_and_edits_inherit_the_source_cameos(srv, keys, cameo):
    _grant(srv, keys, cameo)
    mallory = srv.client(keys["mallory"])
    v = mallory.videos.create_and_poll(prompt=f"@{cameo['handle']} skates", seconds="4", extra_body=FAST)
    assert v.status == "completed", v.error
    extend = dict(video={"id": v.id}, prompt="and skates on", seconds="4", **FAST)
    edit = dict(video={"id": v.id}, prompt="the same, in watercolour", **FAST)

    _revoke(srv, keys, cameo)
    # neither prompt names anybody, but the source shows @eileen
    for path, body in (("/videos/extensions", extend), ("/videos/edits", edit)):
        with pytest.raises(openai.PermissionDeniedError) as e:
            _by_reference(mallory, path, **body)
        assert (_code(e.value)["code"], _code(e.value)["param"]) == ("cameo_permission_denied", "video"), path

    _grant(srv, keys, cameo)
    made = [_by_reference(mallory, "/videos/extensions", **extend), _by_reference(mallory, "/videos/edits", **edit)]
    # the derived videos are uses of the cameo: re-checked, listed to its owner, open to takedown
    assert {m.id for m in made} <= _uses(srv, keys, cameo)
    for m in made:  # they need not render: keep the shared CPU free
        mallory.videos.delete(m.id)
    _revoke(srv, keys, cameo)


def test_uploaded_edit_video_is_face_checked(srv, keys, cameo, clip_dir):
    from mutoscope.media import encode_mp4
    from tests.likeness.clips import build_clip

    face = build_clip(clip_dir / "edit-face.mp4", digits=None).read_bytes()  # eileen's face, silent
    noise = io.BytesIO()
    encode_mp4(noise, np.random.default_rng(1).integers(0, 255, (48, 96, 128, 3), dtype=np.uint8), 12)
    _grant(srv, keys, cameo, user=None, policy="only_me")
    eileen, mallory = srv.client(keys["eileen"]), srv.client(keys["mallory"])

    with pytest.raises(openai.BadRequestError) as e:
        mallory.videos.edit(prompt="in watercolour", video=("face.mp4", face, "video/mp4"), extra_body=FAST)
    err = _code(e.value)
    assert (err["code"], err["param"]) == ("likeness_not_permitted", "video"), err

    own = eileen.videos.edit(prompt="in watercolour", video=("face.mp4", face, "video/mp4"), extra_body=FAST)
    assert own.id in _uses(srv, keys, cameo)  # the matched face binds the edit to the cameo's consent
    faceless = mallory.videos.edit(prompt="in watercolour", video=("noise.mp4", noise.getvalue(), "video/mp4"),
                                   extra_body=FAST)
    eileen.videos.delete(own.id)
    mallory.videos.delete(faceless.id)


def test_audit_chain_records_the_recheck_and_detects_an_edit(srv, keys, cameo):
    with srv.http(keys["eileen"]) as h:
        log = h.get("/v1/cameos/audit").json()["data"]
        denials = [r["detail"].get("at") for r in log if r["action"] == "deny"]
        assert "create" in denials and "publish" in denials, denials
        assert {"grant", "revoke", "use", "takedown"} <= {r["action"] for r in log}
        assert "embedding" not in str(log)
        ok = h.get("/v1/cameos/audit/verify").json()
        # eileen is a member: she learns what the chain proves about her own rows, not its global size
        assert ok["valid"] is True and ok["scope"] == "own" and ok["checked"] >= len(log)
        assert ok["head"] == log[-1]["hash"] or len(log) >= 100
        victim = next(r for r in log if r["action"] == "revoke")
        with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
            db.execute("UPDATE cameo_audit SET subject_id = 'someone_else' WHERE seq = ?", (victim["seq"],))
        bad = h.get("/v1/cameos/audit/verify").json()
        assert bad["valid"] is False and bad["first_bad_seq"] == victim["seq"] and "edited" in bad["reason"]
    with srv.http(keys["mallory"]) as h:  # no rows of her own: nothing about eileen's, not even the break
        theirs = h.get("/v1/cameos/audit/verify").json()
        assert (theirs["scope"], theirs["valid"], theirs["checked"], theirs["first_bad_seq"]) == \
            ("own", True, 0, None), theirs
        assert theirs["head"] == "0" * 64
    with srv.http() as h:  # the owner sees the whole chain
        full = h.get("/v1/cameos/audit/verify").json()
        assert full["scope"] == "all" and full["first_bad_seq"] == victim["seq"] and full["checked"] >= 1
    with srv.http(keys["eileen"]) as h:
        with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
            db.execute("UPDATE cameo_audit SET subject_id = ? WHERE seq = ?", (victim["subject_id"], victim["seq"]))
        assert h.get("/v1/cameos/audit/verify").json()["valid"] is True
