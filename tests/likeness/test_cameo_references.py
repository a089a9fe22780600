"""A cameo reaches the model, through a live server and the official openai SDK.

One server; `eileen` enrols a cameo through the real verification (astronaut clip, espeak-ng speech) with
voice consent. On the tiny random-weight MiniMax-H3 (`tiny-minimax-h3`, the real modular pipeline) a video
naming `@eileen` gets exactly her stored reference frames and her voice sample as references, labelled in
order, read from what the engine recorded of the call (the video row's `resolved`), not from a mock. Without
voice consent no audio reference; after a revoke, nothing. Other models keep today's behaviour and say so.
`audio_reference`: bad input is refused before anything is queued; a supplied soundtrack is the output's sound.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3

import numpy as np
import openai
import pytest
from PIL import Image

from mutoscope.engine.audio import resample
from mutoscope.media import read_audio
from mutoscope.media.sound import wav_bytes
from tests.conftest import LiveServer, wait_for
from tests.likeness.clips import speech
from tests.likeness.enrol import enrol, user_keys

H3 = "tiny-minimax-h3"
FAST = {"num_inference_steps": 2}
SIZE = "256x128"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, whisper_dir, clip_dir):
    root = tmp_path_factory.mktemp("refs-srv")
    # Jobs conditioned on references cost twice their seconds on this server's plan.
    plans = root / "plans.toml"
    plans.write_text("[plans.studio]\nconcurrent_jobs = 8\nrequests_per_minute = 600\nreference_cost = 2.0\n")
    s = LiveServer(root / "data", MUTOSCOPE_LIKENESS_WHISPER_MODEL=str(whisper_dir),
                   MUTOSCOPE_PLANS_FILE=str(plans), MUTOSCOPE_DEFAULT_PLAN="studio").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keys(srv) -> dict[str, str]:
    return user_keys(srv, ("eileen", "mallory"), "studio")


@pytest.fixture(scope="module")
def cameo(srv, keys, clip_dir) -> dict:
    with srv.http(keys["eileen"]) as h:
        return enrol(h, clip_dir, "eileen", voice_consent="true")


def _resolved(srv, video_id: str) -> dict:
    with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
        row = db.execute("select resolved from videos where id = ?", (video_id,)).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def _audit(srv, video_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(srv.data_dir / "mutoscope.db") as db:
        return db.execute("select action, detail from cameo_audit where subject_id = ? order by seq",
                          (video_id,)).fetchall()


def _asset(srv, key: str) -> bytes:
    return (srv.data_dir / "assets" / key).read_bytes()


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _done(client, video_id: str, timeout: float = 600):
    return wait_for(lambda: (v := client.videos.retrieve(video_id)).status in ("completed", "failed") and v,
                    timeout=timeout, interval=0.5)


def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_enrolment_with_voice_consent_keeps_a_voice_sample(srv, cameo):
    assert cameo["voice_consent"] is True and cameo["voice_sample"] is True
    audio, rate = read_audio(io.BytesIO(_asset(srv, f"cameos/{cameo['id']}/voice.wav")))
    assert rate == 16000 and audio.shape[0] == 1 and 0.5 <= audio.shape[1] / rate <= 8.0


def _spent(srv, key: str) -> float:
    with srv.http(key) as h:
        return h.get("/v1/usage").json()["spent"]


def test_the_model_receives_her_frames_and_voice_in_order(srv, keys, cameo):
    client = srv.client(keys["eileen"])
    spent = _spent(srv, keys["eileen"])
    v = client.videos.create(model=H3, prompt=f"@{cameo['handle']} waves hello", size=SIZE, seconds="4",
                             extra_body=FAST)
    v = _done(client, v.id)
    assert v.status == "completed", v.error
    cameos = v.model_extra["cameos"]
    assert [(c["id"], c["conditioned"], c["voice"]) for c in cameos] == [(cameo["id"], "references", True)]
    assert _spent(srv, keys["eileen"]) - spent == 8  # 4 s at the plan's reference_cost of 2
    assert set(cameos[0]["face_match"]) == {"distance", "found", "frames"}

    resolved = _resolved(srv, v.id)
    got = resolved["references"]
    frames = [r for r in got if r["kind"] == "image"]
    assert 1 <= len(frames) <= 3
    assert [r["source"] for r in got] == [f"{cameo['id']}:reference-{i}.jpg" for i in range(len(frames))] \
        + [f"{cameo['id']}:voice"]
    for i, r in enumerate(frames):
        stored = np.asarray(Image.open(io.BytesIO(_asset(srv, f"cameos/{cameo['id']}/reference-{i}.jpg")))
                            .convert("RGB"))
        assert r["pixels_sha256"] == _sha(stored) and r["labels"] == [f"<Picture {i + 1}>"]
    voice, _ = read_audio(io.BytesIO(_asset(srv, f"cameos/{cameo['id']}/voice.wav")))
    assert got[-1]["audio_sha256"] == _sha(voice) and got[-1]["labels"] == ["<Audio 1>"]
    pictures = " ".join(f"<Picture {i + 1}>" for i in range(len(frames)))
    assert resolved["presentation"].endswith(f"{pictures} (voice: <Audio 1>) waves hello")
    used = [json.loads(d) for a, d in _audit(srv, v.id) if a == "reference"]
    assert used == [{"references": [r["source"].split(":", 1)[1] for r in got]}]
    # The owner's list of uses shows the same measurement as the video.
    with srv.http(keys["eileen"]) as h:
        uses = {u["video_id"]: u for u in h.get(f"/v1/cameos/{cameo['id']}/videos").json()["data"]}
    assert uses[v.id]["conditioned"] == "references" and uses[v.id]["face_match"] == cameos[0]["face_match"]


def test_without_voice_consent_there_is_no_audio_reference(srv, keys, cameo):
    with srv.http(keys["eileen"]) as h:
        r = h.post(f"/v1/cameos/{cameo['id']}", json={"voice_consent": False})
        assert r.status_code == 200, r.text
        assert (r.json()["voice_consent"], r.json()["voice_sample"]) == (False, False)
        assert not (srv.data_dir / "assets" / f"cameos/{cameo['id']}/voice.wav").exists()
        # The recording was not kept, so the voice cannot come back without recording again.
        again = h.post(f"/v1/cameos/{cameo['id']}", json={"voice_consent": True})
        assert again.status_code == 400 and again.json()["error"]["code"] == "voice_sample_unavailable"
    client = srv.client(keys["eileen"])
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.videos.create(model=H3, prompt=f"@{cameo['handle']} sings", size=SIZE, seconds="4",
                             extra_body={**FAST, "cameo_voices": [cameo["handle"]]})
    assert (_error(e.value)["code"], _error(e.value)["param"]) == ("cameo_voice_not_permitted", "cameo_voices")
    v = _done(client, client.videos.create(model=H3, prompt=f"@{cameo['handle']} sings", size=SIZE, seconds="4",
                                           extra_body=FAST).id)
    assert v.status == "completed", v.error
    assert v.model_extra["cameos"][0]["voice"] is False
    assert [r["kind"] for r in _resolved(srv, v.id)["references"]] == ["image"] * len(
        [r for r in _resolved(srv, v.id)["references"]])


def test_other_models_keep_todays_behaviour(srv, keys, cameo):
    client = srv.client(keys["eileen"])
    spent = _spent(srv, keys["eileen"])
    v = _done(client, client.videos.create(model="tiny-ltx2", prompt=f"@{cameo['handle']} walks", size="288x512",
                                           seconds="4", extra_body=FAST).id)
    assert v.status == "completed", v.error
    assert _spent(srv, keys["eileen"]) - spent == 4  # no references: charged as any job
    assert [(c["id"], c["conditioned"]) for c in v.model_extra["cameos"]] == [(cameo["id"], "none")]
    assert "references" not in _resolved(srv, v.id)


def test_a_revoke_before_the_job_runs_loads_nothing(srv, keys, cameo):
    with srv.http(keys["eileen"]) as h:
        assert h.post(f"/v1/cameos/{cameo['id']}", json={"policy": "approved"}).status_code == 200
        assert h.post(f"/v1/cameos/{cameo['id']}/grants", json={"user": "mallory"}).status_code == 200
    mallory = srv.client(keys["mallory"])
    # A long job first holds the worker, so the cameo job is still queued when the grant is revoked.
    blocker = mallory.videos.create(model="tiny-ltx2", prompt="a long take", size="288x512", seconds="4",
                                    extra_body={"num_inference_steps": 40})
    queued = mallory.videos.create(model=H3, prompt=f"@{cameo['handle']} jumps", size=SIZE, seconds="4",
                                   extra_body=FAST)
    with srv.http(keys["eileen"]) as h:
        assert h.delete(f"/v1/cameos/{cameo['id']}/grants/mallory").status_code == 200
    v = _done(mallory, queued.id)
    assert v.status == "failed" and v.error.code == "cameo_permission_denied"
    assert "references" not in _resolved(srv, queued.id)
    assert not [a for a, _ in _audit(srv, queued.id) if a == "reference"]
    mallory.videos.delete(blocker.id)


def _wav_data_url(audio: np.ndarray, rate: int) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio, rate)).decode()


def test_audio_reference_bad_input_is_refused_before_queueing(srv, keys):
    client = srv.client(keys["mallory"])
    tone = (0.2 * np.sin(np.linspace(0, 2000, 22050 * 2))).astype(np.float32)[None, :]
    cases = [
        ("tiny-wan", {"audio_url": _wav_data_url(tone, 22050)}, "audio_reference", "audio_not_supported"),
        ("tiny-ltx2", {"audio_url": "data:audio/wav;base64," + base64.b64encode(b"not audio").decode()},
         "audio_reference.audio_url", "invalid_audio"),
        ("tiny-ltx2", {"audio_url": _wav_data_url(np.zeros((1, 8000 * 61), np.float32), 8000)},
         "audio_reference.audio_url", "invalid_audio"),
        ("tiny-ltx2", {"file_id": "file-nope"}, "audio_reference.file_id", "file_not_found"),
        (H3, {"audio_url": _wav_data_url(tone, 22050)}, "audio_reference", "audio_needs_picture"),
    ]
    before = len(client.videos.list().data)
    for model, ref, param, code in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.create(model=model, prompt="a choir", size="288x512" if model != H3 else SIZE,
                                 seconds="4", extra_body={**FAST, "audio_reference": ref})
        assert (_error(e.value)["param"], _error(e.value)["code"]) == (param, code), model
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(model=H3, prompt="@nobody_here sings", size=SIZE, seconds="4",
                             extra_body={**FAST, "cameo_voices": ["nobody_here"]})
    assert _error(e.value)["param"] == "cameo_voices"
    assert len(client.videos.list().data) == before  # nothing was queued or charged


def test_a_voice_that_is_a_cameos_is_refused_like_a_face(srv, keys, cameo):
    """espeak-ng's voice is the one every test cameo speaks with: to the voice guard it is eileen's."""
    spoken, rate = speech("four, seven, two, nine, one")
    client = srv.client(keys["mallory"])
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(model="tiny-ltx2", prompt="a speech", size="288x512", seconds="4",
                             extra_body={**FAST,
                                         "audio_reference": {"audio_url": _wav_data_url(spoken[None, :], rate)}})
    assert (_error(e.value)["code"], _error(e.value)["param"]) == ("likeness_not_permitted", "audio_reference")


def test_the_output_sound_is_the_supplied_clip(srv, keys):
    client = srv.client(keys["mallory"])
    rate = 44100
    t = np.arange(int(4.5 * rate)) / rate
    clip = (0.3 * np.sin(2 * np.pi * 330 * t) * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32)[None, :]
    uploaded = client.files.create(file=("tone.wav", wav_bytes(clip, rate), "audio/wav"), purpose="user_data")
    v = _done(client, client.videos.create(model="tiny-ltx2", prompt="a hum", size="288x512", seconds="4",
                                           extra_body={**FAST, "audio_reference": {"file_id": uploaded.id}}).id)
    assert v.status == "completed", v.error
    record = _resolved(srv, v.id)["audio_reference"]
    assert record["steps"] == 2 and record["sha256"] == _sha(clip) and record["samples"] == clip.shape[1]
    sound, out_rate = read_audio(io.BytesIO(client.videos.download_content(v.id).read()))
    want = resample(clip, rate, out_rate)[0, : 4 * out_rate]
    got = sound[0, : want.shape[0]]
    # AAC in the MP4 is lossy; the engine's output is the resampled clip exactly (tests/engine/test_minimax_h3.py).
    assert np.corrcoef(got, want)[0, 1] > 0.99


def test_a_storyboard_shot_naming_a_cameo_gets_its_references(srv, keys, cameo):
    client = srv.client(keys["eileen"])
    board = [{"prompt": "An empty beach at dawn", "seconds": "4"},
             {"prompt": f"@{cameo['handle']} walks along the water", "seconds": "4", "transition": "cut"}]
    v = _done(client, client.videos.create(model=H3, prompt="Beach walk", size=SIZE,
                                           extra_body={**FAST, "storyboard": json.dumps(board)}).id)
    assert v.status == "completed", v.error
    shots = _resolved(srv, v.id)["storyboard"]["shots"]
    assert "references" not in shots[0]
    assert [r["source"].split(":")[0] for r in shots[1]["references"]] == [cameo["id"]] * len(shots[1]["references"])
    assert [(c["id"], c["conditioned"]) for c in v.model_extra["cameos"]] == [(cameo["id"], "references")]
