"""Storyboards end to end: one job renders timed shots into one video with one soundtrack (live server,
the openai SDK's `extra_body`, PyAV on the result).

Generation dominates on a shared 2-core CPU, so the module renders one three-shot storyboard that every
read-only assertion shares, one storyboard it cancels during its second shot, one remix of a shot, and
one two-shot storyboard from the CLI. The model is tiny-ltx2's random-weight pipeline (it makes sound),
registered here at a small size: the three-shot storyboard is 4 s + 4 s + 4 s, as a creator would lay one
out, and the cancelled and CLI ones use 1- and 2-second shots. Every refusal is checked without
generating anything.
"""

from __future__ import annotations

import io
import json
import time

import av
import numpy as np
import openai
import pytest

from mutoscope.media import encode_mp4
from tests.api.test_videos import probe
from tests.conftest import TINY_LTX2_QUIET_KWARGS, serve_live, wait_for

MODEL, SIZE, FPS = "tiny-ltx2-mini", "320x192", 24
FAST = {"num_inference_steps": 2}
SHOT = 4  # seconds in each of the three shots
SHOTS = [
    {"prompt": "a paper boat on a pond", "seconds": str(SHOT), "camera": "static"},
    {"prompt": "a lighthouse at dusk", "seconds": str(SHOT), "transition": "cut", "camera": "dolly_in"},
    {"prompt": "the lighthouse beam sweeps the sea", "seconds": str(SHOT), "transition": "continuous"},
]
TOTAL = 3 * SHOT
PLANS = """
[plans.unlimited]
models = ["*"]
concurrent_jobs = 1000
requests_per_minute = 100000

[plans.short]
models = ["*"]
max_seconds = 2
concurrent_jobs = 10
requests_per_minute = 1000
"""


def models_file(root):
    """The shipped registry plus tiny-ltx2's builtin pipeline at a small size, with 1-, 2- and 4-second shots."""
    from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH

    path = root / "models.toml"
    path.write_text(DEFAULT_REGISTRY_PATH.read_text() + f"""
[[models]]
name = "{MODEL}"
family = "ltx2"
weights = "builtin:tiny-ltx2"
fps = {FPS}
sizes = ["{SIZE}"]
seconds = ["1", "2", "4"]
steps = 2
guidance = 1.0
has_audio = true
memory = "full"
dtype = "float32"
test_model = true
pin_first_frame = true

[models.pipeline_kwargs]
{TINY_LTX2_QUIET_KWARGS}image_crf = 0

[models.camera]
static = {{ prompt = "The camera is static." }}
dolly_in = {{ prompt = "The camera dollies in." }}
jib_up = {{ prompt = "The camera rises." }}
""")
    return path


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("storyboard")
    (root / "plans.toml").write_text(PLANS)
    yield from serve_live(tmp_path_factory, "storyboard", root=root, MUTOSCOPE_MODELS_FILE=str(models_file(root)),
                          MUTOSCOPE_PLANS_FILE=str(root / "plans.toml"), MUTOSCOPE_DEFAULT_PLAN="short",
                          MUTOSCOPE_MAX_STORYBOARD_SHOTS="4")


@pytest.fixture(scope="module")
def client(srv):
    return srv.client()


def create(client, shots, *, as_json: bool = False, **extra):
    """The SDK's videos.create sends multipart, which flattens a list of objects key by key (every prompt,
    then every seconds...) and so cannot say which shot a sparse key belongs to: the storyboard goes as a
    JSON string field there, or the whole body as JSON."""
    if as_json:
        return client.videos.create(prompt="a short film", model=MODEL, size=SIZE,
                                    extra_headers={"Content-Type": "application/json"},
                                    extra_body={**FAST, "storyboard": shots, **extra})
    return client.videos.create(prompt="a short film", model=MODEL, size=SIZE,
                                extra_body={**FAST, "storyboard": json.dumps(shots), **extra})


@pytest.fixture(scope="module")
def board(client):
    video = create(client, SHOTS, seed=5)
    assert video.status in ("queued", "in_progress")
    done = client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed", done.error
    return done


@pytest.fixture(scope="module")
def media(client, board):
    data = client.videos.download_content(board.id).read()
    info = probe(data)
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        audio = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
    info["audio"], info["rate"] = audio, rate
    return info


def blocks(frame: np.ndarray, n: int) -> np.ndarray:
    h, w = frame.shape[0] // n * n, frame.shape[1] // n * n
    return frame[:h, :w].astype(np.float64).reshape(h // n, n, w // n, n, 3).mean(axis=(1, 3))


def jump(frames, at: int, n: int = 64) -> float:
    """How much the picture's coarse layout changes from frame at-1 to frame at."""
    return float(np.abs(blocks(frames[at], n) - blocks(frames[at - 1], n)).mean())


def usage(client) -> dict:
    return client.get("/usage", cast_to=object)


def test_one_video_of_the_whole_storyboard(board, media):
    assert board.seconds == str(TOTAL) and board.size == SIZE and board.prompt == "a short film"
    assert (media["width"], media["height"]) == (320, 192) and media["acodec"] == "aac"
    assert abs(len(media["frames"]) - TOTAL * FPS) <= 1
    assert abs(media["duration"] - TOTAL) <= 1 / FPS
    # Sound across the whole length, to within an AAC frame.
    assert abs(media["audio_duration"] - TOTAL) < 0.05
    assert TOTAL - 0.01 < media["audio"].shape[1] / media["rate"] < TOTAL + 0.05  # plus the last AAC frame's padding


def test_shots_are_reported_on_frame_boundaries(board, media):
    shots = board.model_extra["shots"]
    assert [s["index"] for s in shots] == [0, 1, 2]
    assert [s["transition"] for s in shots] == [None, "cut", "continuous"]
    assert [s["camera"] for s in shots] == ["static", "dolly_in", None]
    assert [s["prompt"] for s in shots] == [s["prompt"] for s in SHOTS]
    frames = len(media["frames"])
    edges = [0, SHOT * FPS, 2 * SHOT * FPS, frames]
    for i, shot in enumerate(shots):
        assert shot["start_seconds"] == pytest.approx(edges[i] / FPS, abs=1e-6)
        assert shot["end_seconds"] == pytest.approx(edges[i + 1] / FPS, abs=1e-6)
    assert shots[-1]["end_seconds"] == pytest.approx(frames / FPS, abs=1e-6)
    assert board.model_extra["seed"] == 5


def test_a_continuous_shot_continues_the_picture_and_a_cut_does_not(media):
    # Random weights draw noise, frame to frame too, so fine detail says nothing; the coarse layout (64-px
    # block means) is what the conditioning on the previous shot's last frames carries over. No shot here has
    # an image, so pin_first_frame (it copies an input image into frame 0) plays no part: a continuous shot
    # is an extension-style generation, and its first frame is the model's.
    frames = media["frames"]
    cut, continuous = jump(frames, SHOT * FPS), jump(frames, 2 * SHOT * FPS)
    inside = np.median([jump(frames, i) for i in range(2, FPS)])
    assert continuous < 0.5 * cut, (continuous, cut)
    assert continuous < inside, (continuous, inside)  # smoother than the noise's own flicker


def test_no_silent_gap_at_either_boundary(media):
    # RMS over both channels: the tiny vocoder's two channels are close to opposite, so a mono mix of them
    # is nearly silent everywhere and would hide a gap.
    audio, rate = media["audio"], media["rate"]
    win = int(0.05 * rate)

    def rms(start: float, end: float, step: int) -> np.ndarray:
        return np.array([np.sqrt(np.mean(audio[:, i:i + win] ** 2))
                         for i in range(int(start * rate), int(end * rate) - win, step)])

    track = rms(0, media["audio_duration"], win // 2)  # the stream's length, not the last AAC frame's padding
    # The tiny model's sound holds a steady level, so a floor this close to it catches a dip too: 20 ms of
    # silence inside a 50 ms window leaves it at 77 %.
    floor = 0.8 * float(np.median(track))
    assert floor > 0.01, "the model's sound is too quiet to test"
    for boundary in (SHOT, 2 * SHOT):  # windows sliding across each joint, 10 ms apart
        around = rms(boundary - 0.1, boundary + 0.1 + win / rate, win // 5)
        assert around.min() > floor, (boundary, around.min(), floor)
    # and nowhere else along the track
    assert track.min() > floor, (track.min(), floor)


def test_cancel_during_the_second_shot_leaves_nothing_and_refunds(srv, client):
    before = usage(client)
    video = create(client, [{"prompt": "rain", "seconds": "1"}, {"prompt": "snow", "seconds": "2", "transition": "cut"},
                            {"prompt": "sun", "seconds": "1", "transition": "continuous"}], as_json=True)
    assert usage(client)["reserved"] == pytest.approx(before["reserved"] + 4)  # admission reserves the total
    # Shot 2 is a half of the rendered seconds after the first quarter: 22 % to 67 % of the progress.
    seen = wait_for(lambda: (v := client.videos.retrieve(video.id)).progress > 23 and v, timeout=180, interval=0.05)
    assert seen.status == "in_progress" and seen.progress < 67, seen.progress
    client.videos.delete(video.id)
    wait_for(lambda: usage(client)["active_jobs"] == before["active_jobs"], timeout=60)
    after = usage(client)
    assert after["reserved"] == pytest.approx(before["reserved"]) and after["spent"] == pytest.approx(before["spent"])
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    folder = srv.data_dir / "assets" / "videos" / video.id
    wait_for(lambda: not folder.exists() or not any(p.is_file() for p in folder.rglob("*")), timeout=30)


def test_remix_of_one_shot_renders_from_that_shot_on(srv, client, board, media):
    # The source's stored file is replaced by one with a known first shot (a gradient and a 440 Hz tone), so
    # the remix can only show it if it really reuses the first shot's frames and sound from the file; had it
    # rendered shot 0 again, it would show the model's noise.
    yy, xx = np.mgrid[0:192, 0:320]
    pattern = np.stack([np.stack([(xx + 3 * i) % 256, yy % 256, np.full_like(xx, 90)], -1)
                        for i in range(TOTAL * FPS)]).astype(np.uint8)
    t = np.arange(TOTAL * 24000) / 24000
    tone = np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    [stored] = list((srv.data_dir / "assets" / "videos" / board.id).rglob("video.mp4"))
    encode_mp4(stored, pattern, FPS, tone, 24000)

    before = usage(client)
    remix = client.videos.remix(board.id, prompt="the lighthouse in a snowstorm", extra_body={**FAST, "shot": 1})
    assert remix.remixed_from_video_id == board.id and remix.seconds == str(TOTAL)
    assert usage(client)["reserved"] == pytest.approx(before["reserved"] + 2 * SHOT)  # shots 1 and 2 are rendered
    done = client.videos.poll(remix.id, poll_interval_ms=200)
    assert done.status == "completed", done.error
    shots = done.model_extra["shots"]
    assert [s["prompt"] for s in shots] == [SHOTS[0]["prompt"], "the lighthouse in a snowstorm", SHOTS[2]["prompt"]]
    assert usage(client)["spent"] == pytest.approx(before["spent"] + 2 * SHOT)

    data = client.videos.download_content(done.id).read()
    out = probe(data)
    assert len(out["frames"]) == len(pattern)
    reused = max(float(np.abs(blocks(out["frames"][i], 16) - blocks(pattern[i], 16)).mean())
                 for i in range(SHOT * FPS))
    assert reused < 3, reused
    rendered = min(float(np.abs(blocks(out["frames"][i], 16) - blocks(pattern[i], 16)).mean())
                   for i in range(SHOT * FPS, TOTAL * FPS))
    assert rendered > 10, rendered
    # The first shot's sound is the file's tone, up to the cut's crossfade; the rest is the model's.
    with av.open(io.BytesIO(data)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        sound = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1).mean(axis=0)
    first = sound[int(0.1 * rate):int(0.9 * rate)]  # windows of one length, so their spectra compare
    spectrum = np.abs(np.fft.rfft(first))
    assert abs(np.argmax(spectrum) * rate / len(first) - 440) < 5
    near_cut = sound[int((SHOT - 1.0) * rate):int((SHOT - 0.2) * rate)]  # all of the reused shot, not its start
    assert abs(np.argmax(np.abs(np.fft.rfft(near_cut))) * rate / len(near_cut) - 440) < 5
    later = sound[int((SHOT + 0.1) * rate):int((SHOT + 0.9) * rate)]
    assert np.abs(np.fft.rfft(later)).max() < 0.5 * spectrum.max()


def test_try_again_in_the_web_app_submits_the_same_storyboard(srv, client, board):
    from tests.web.conftest import signed_in_http

    web, token = signed_in_http(srv.base_url, srv.api_key)
    r = web.post(f"/videos/{board.id}/retry", data={"csrf_token": token})
    assert r.status_code == 303, r.text
    again = client.videos.retrieve(r.headers["location"].rsplit("/", 1)[1])
    client.videos.delete(again.id)  # what was submitted is the point, not another render
    assert again.id != board.id and again.seconds == board.seconds
    assert [(s["prompt"], s["seconds"], s["transition"], s["camera"]) for s in again.model_extra["shots"]] == \
        [(s["prompt"], s["seconds"], s["transition"], s["camera"]) for s in board.model_extra["shots"]]


def test_refusals_name_the_shot_and_field(srv, client, board):
    def refused(body: dict, status: int = 400) -> dict:
        with srv.http() as h:
            r = h.post("/v1/videos", json={"prompt": "x", "model": MODEL, "size": SIZE, **body})
        assert r.status_code == status, r.text
        return r.json()["error"]

    one = {"prompt": "a", "seconds": "1"}
    assert refused({"storyboard": []})["param"] == "storyboard"
    err = refused({"storyboard": [one] * 5})
    assert err["param"] == "storyboard" and err["code"] == "too_many_shots" and "at most 4" in err["message"]
    err = refused({"storyboard": [one, {"prompt": "b", "seconds": "3"}]})
    assert err["param"] == "storyboard[1].seconds" and err["code"] == "invalid_seconds" and "1, 2" in err["message"]
    err = refused({"storyboard": [one, one, {**one, "transition": "dissolve"}]})
    assert err["param"] == "storyboard[2].transition"
    err = refused({"storyboard": [{**one, "transition": "continuous"}]})
    assert err["param"] == "storyboard[0].transition" and err["code"] == "invalid_transition"
    err = refused({"storyboard": [one, {**one, "transition": "continuous", "image": "data:image/png;base64,AAAA"}]})
    assert err["param"] == "storyboard[1].image"
    assert refused({"storyboard": [one, {"seconds": "1"}]})["param"] == "storyboard[1].prompt"
    assert refused({"storyboard": [one, {**one, "image": "data:image/png;base64,AAAA"}]})["param"] \
        == "storyboard[1].image.image_url"
    assert refused({"storyboard": [one, one], "seconds": "1"})["param"] == "seconds"
    assert refused({"storyboard": "[{\"prompt\": \"a\""})["param"] == "storyboard"
    # A member on a plan of at most 2 s per video: the 3 s total is over it, whatever each shot's length.
    with srv.http() as h:
        key = h.post("/v1/admin/users", json={"name": "shorty", "plan": "short"}).json()["api_key"]
    with srv.http(key) as h:
        r = h.post("/v1/videos", json={"prompt": "x", "model": MODEL, "size": SIZE, "storyboard": [one] * 3})
    assert r.status_code == 400 and r.json()["error"]["param"] == "storyboard", r.text
    assert r.json()["error"]["code"] == "seconds_not_allowed" and "3 s" in r.json()["error"]["message"]
    # Multipart carries the storyboard as a JSON string; its refusals name the shot the same way.
    with srv.http() as h:
        r = h.post("/v1/videos", data={"prompt": "x", "model": MODEL, "size": SIZE,
                                       "storyboard": json.dumps([one, {**one, "seconds": "7"}])},
                   files={"unused": ("x", b"", "text/plain")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "storyboard[1].seconds", r.text
    # Remixing a storyboard names its shot.
    for extra, param in (({}, "shot"), ({"shot": 3}, "shot")):
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.remix(board.id, prompt="y", extra_body=extra)
        assert e.value.body["param"] == param, e.value.body
    # Nothing above was admitted.
    assert len([v for v in client.videos.list(limit=100).data]) == 2


def test_cli_renders_a_storyboard_file(srv, tmp_path):
    shots = tmp_path / "shots.toml"
    shots.write_text(f'''
model = "{MODEL}"
size = "{SIZE}"
seed = 3
steps = 2

[[shots]]
prompt = "a kite over a beach"
seconds = "1"

[[shots]]
prompt = "the kite climbs"
seconds = "1"
transition = "continuous"
camera = "jib_up"
''')
    out = tmp_path / "film.mp4"
    t0 = time.time()
    done = srv.cli("generate", "--storyboard", str(shots), "-o", str(out), check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    info = probe(out.read_bytes())
    assert len(info["frames"]) == 2 * FPS and info["acodec"] == "aac", time.time() - t0
    assert abs(info["audio_duration"] - 2.0) < 0.05
    bad = tmp_path / "bad.toml"
    bad.write_text(f'model = "{MODEL}"\nsize = "{SIZE}"\n[[shots]]\nprompt = "a"\nseconds = "5"\n')
    done = srv.cli("generate", "--storyboard", str(bad), "-o", str(out), check=False)
    assert done.returncode != 0 and "storyboard[0].seconds" in done.stderr, done.stderr[-2000:]
