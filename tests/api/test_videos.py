"""The Videos API end to end: a live server, the official openai SDK, PyAV on the results."""

from __future__ import annotations

import base64
import io

import av
import httpx
import openai
import pytest
from openai.types import Video
from PIL import Image

from tests.conftest import wait_for
from tests.storage.ranges import check_range_and_head, check_range_errors

FAST = {"num_inference_steps": 2}


def probe(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return {"vcodec": v.codec_context.name, "width": v.width, "height": v.height,
                "fps": float(v.average_rate), "frames": frames,
                "duration": float(c.duration / av.time_base) if c.duration else None,
                "acodec": a.codec_context.name if a else None,
                "audio_duration": float(a.duration * a.time_base) if a and a.duration else None}


def png_bytes(w: int, h: int, color=(200, 30, 30)) -> bytes:
    img = Image.new("RGB", (w, h), color)
    for x in range(0, w, 8):  # a bit of structure so it is a real picture
        img.putpixel((x, h // 2), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def done(client):
    """One completed text-to-video job at the default size, shared by the read-only tests."""
    video = client.videos.create_and_poll(prompt="a lighthouse in a storm, waves crashing", seconds="4",
                                          extra_body={**FAST, "seed": 7})
    assert video.status == "completed", video.error
    return video


def test_create_and_poll_completes_with_real_mp4(client, done):
    assert done.object == "video" and done.model == "sora-2"
    # The alias stays the model; the model and checkpoint behind it are named beside it.
    assert (done.model_extra or {})["generated_by"] == {"name": "tiny-ltx2", "weights": "builtin:tiny-ltx2",
                                                        "revision": None}
    # No size sent: the model's default_size (tiny-ltx2 sets a small one; real models keep OpenAI's 720x1280).
    assert done.progress == 100 and done.size == "288x512" and done.seconds == "4"
    assert done.completed_at >= done.created_at and done.expires_at is None and done.error is None
    data = client.videos.download_content(done.id).read()
    info = probe(data)
    assert info["vcodec"] == "h264" and info["acodec"] == "aac"
    assert (info["width"], info["height"]) == (288, 512)
    assert abs(info["duration"] - 4.0) < 0.1
    assert len(info["frames"]) == round(4 * info["fps"])
    assert abs(info["audio_duration"] - len(info["frames"]) / info["fps"]) < 0.05


def test_thumbnail_and_spritesheet(client, done):
    thumb = client.videos.download_content(done.id, variant="thumbnail").read()
    assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    img = Image.open(io.BytesIO(thumb))
    assert abs(img.width / img.height - 720 / 1280) < 0.02
    sheet = client.videos.download_content(done.id, variant="spritesheet").read()
    assert sheet[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(sheet)).format == "JPEG"


def test_content_supports_http_range(server, done):
    with server.http() as h:
        full = h.get(f"/v1/videos/{done.id}/content")
        part = h.get(f"/v1/videos/{done.id}/content", headers={"Range": "bytes=100-199"})
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"


def test_content_head_and_range_errors(server, done):
    """The local folder's zero-copy path: HEAD works and bad ranges answer in the error envelope."""
    with server.http() as h:
        check_range_and_head(h, f"/v1/videos/{done.id}/content")
        check_range_errors(h, f"/v1/videos/{done.id}/content")
        assert h.head("/v1/videos/video_nope/content").status_code == 404


def test_retrieve_sends_poll_header_while_running(server, client):
    video = client.videos.create(prompt="slow clouds", extra_body={"num_inference_steps": 6})
    with server.http() as h:
        r = h.get(f"/v1/videos/{video.id}")
    assert r.json()["status"] in ("queued", "in_progress")
    assert 100 <= int(r.headers["openai-poll-after-ms"]) <= 200
    seen = []

    def progressed():
        v = client.videos.retrieve(video.id)
        seen.append(v.progress)
        return v.status in ("completed", "failed") and v

    final = wait_for(progressed, timeout=180, interval=0.05)
    assert final.status == "completed"
    assert seen == sorted(seen), "progress never goes backwards"
    assert any(0 < p < 85 for p in seen) or len(set(seen)) > 2, f"progress moved in steps: {seen}"
    with server.http() as h:
        assert "openai-poll-after-ms" not in h.get(f"/v1/videos/{video.id}").headers


def test_json_body_with_data_url_image(server, client):
    url = "data:image/png;base64," + base64.b64encode(png_bytes(300, 200, (10, 200, 40))).decode()
    with server.http() as h:
        r = h.post("/v1/videos", json={"prompt": "a green field", "size": "512x288", "seconds": "4",
                                       "input_reference": {"image_url": url}, **FAST})
    assert r.status_code == 200, r.text
    video = client.videos.poll(r.json()["id"])
    assert video.status == "completed", video.error
    info = probe(client.videos.download_content(video.id).read())
    assert (info["width"], info["height"]) == (512, 288)
    first = info["frames"][0].astype(float)
    # The first frame is the reference image (green), fitted to the size.
    assert abs(first[..., 1].mean() - 200) < 40 and abs(first[..., 0].mean() - 10) < 40


def test_multipart_upload_image_and_file_id(client):
    up = client.videos.create(prompt="a red door", size="512x288", input_reference=("ref.png", png_bytes(640, 640),
                                                                                       "image/png"), extra_body=FAST)
    f = client.files.create(file=("ref.png", png_bytes(500, 900, (20, 20, 220)), "image/png"), purpose="vision")
    # The SDK's videos.create only uploads files; JSON clients send the object form (spec: ImageRefParam).
    by_id = client.post("/videos", cast_to=Video, body={"prompt": "a blue door", "size": "288x512",
                                                         "input_reference": {"file_id": f.id}, **FAST})
    for vid, channel in ((up.id, 0), (by_id.id, 2)):
        video = client.videos.poll(vid)
        assert video.status == "completed", video.error
        info = probe(client.videos.download_content(vid).read())
        assert (info["width"], info["height"]) == tuple(int(x) for x in video.size.split("x"))
        assert info["frames"][0][..., channel].mean() > 150


def test_unknown_file_id_is_named(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/videos", cast_to=Video, body={"prompt": "x", "input_reference": {"file_id": "file-doesnotexist"}})
    assert e.value.param == "input_reference.file_id" and "file-doesnotexist" in e.value.message


def test_list_pagination(client):
    ids = [client.videos.create(prompt=f"list item {i}", extra_body=FAST).id for i in range(3)]
    page = client.videos.list(limit=2)
    assert page.data[0].id == ids[-1] and page.data[1].id == ids[-2] and page.has_more
    nxt = client.videos.list(limit=2, after=page.data[-1].id)
    assert nxt.data[0].id == ids[0]
    asc = client.videos.list(limit=100, order="asc")
    got = [v.id for v in asc.data]
    assert got.index(ids[0]) < got.index(ids[1]) < got.index(ids[2])
    assert asc.first_id == got[0] and asc.last_id == got[-1] and not asc.has_more
    everything = [v.id for v in client.videos.list(limit=2)]  # the SDK's auto-pagination follows `after`
    assert set(ids) <= set(everything) and len(everything) == len(set(everything))
    for i in ids:
        client.videos.delete(i)


def test_remix_keeps_settings_and_links_source(client, done):
    remix = client.videos.remix(done.id, prompt="the same lighthouse at dawn, calm sea")
    assert remix.remixed_from_video_id == done.id and remix.id != done.id
    assert (remix.size, remix.seconds, remix.model) == (done.size, done.seconds, done.model)
    final = client.videos.poll(remix.id)
    assert final.status == "completed" and final.prompt.startswith("the same lighthouse")


def test_delete_finished_video_removes_files(server, client):
    video = client.videos.create_and_poll(prompt="to be deleted", extra_body=FAST)
    folder = server.data_dir / "assets" / "videos" / video.id
    assert (folder / "a1" / "video.mp4").exists()  # each attempt writes under its own folder
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    assert not folder.exists()
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)


def test_delete_running_job_stops_it_and_frees_the_worker(server, client):
    slow = client.videos.create(prompt="an endless job", extra_body={"num_inference_steps": 400})
    wait_for(lambda: client.videos.retrieve(slow.id).progress > 0, timeout=120, interval=0.1)
    client.videos.delete(slow.id)
    # 400 steps would take minutes; a free worker finishes the next small job quickly.
    nxt = client.videos.create(prompt="next in line", seconds="4", extra_body=FAST)
    final = client.videos.poll(nxt.id)
    assert final.status == "completed"
    assert final.completed_at - nxt.created_at < 60
    assert not (server.data_dir / "assets" / "videos" / slow.id).exists()
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(slow.id)


def test_delete_queued_job_never_runs(server, client):
    blocker = client.videos.create(prompt="blocker", extra_body={"num_inference_steps": 400})
    queued = client.videos.create(prompt="never runs", extra_body=FAST)
    wait_for(lambda: client.videos.retrieve(blocker.id).progress > 0, timeout=120, interval=0.1)
    client.videos.delete(queued.id)
    client.videos.delete(blocker.id)  # the worker is free again and finds nothing to run
    follow = client.videos.create_and_poll(prompt="after both", extra_body=FAST)
    assert follow.status == "completed"
    assert not (server.data_dir / "assets" / "videos" / queued.id).exists()
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(queued.id)


def test_a_model_without_weights_is_refused_with_the_fix(server, client):
    before = len(client.videos.list(limit=100).data)
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="real model without weights", model="ltx-2")
    assert e.value.code == "model_not_available" and e.value.param == "model"
    message = e.value.body["message"]
    assert "`mutoscope models pull ltx-2`" in message
    assert str(server.data_dir) not in message and "weights" not in message, message
    assert len(client.videos.list(limit=100).data) == before  # no job was made


@pytest.mark.parametrize("kwargs,param", [
    ({"size": "640x480"}, "size"),
    ({"seconds": "7"}, "seconds"),
    ({"model": "sora-9"}, "model"),
])
def test_bad_parameters_name_the_param(client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="x", **kwargs)
    assert e.value.status_code == 400 and e.value.param == param
    assert e.value.type == "invalid_request_error"


def test_missing_prompt_json_and_multipart(server):
    with server.http() as h:
        r1 = h.post("/v1/videos", json={"model": "sora-2"})
        r2 = h.post("/v1/videos", files={"model": (None, "sora-2")})
    for r in (r1, r2):
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["param"] == "prompt" and set(err) == {"message", "type", "param", "code"}


def test_not_an_image_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="x", input_reference=("ref.png", b"this is not a png", "image/png"))
    assert e.value.param == "input_reference" and e.value.code == "invalid_image"


def test_upload_over_limit_is_413(tmp_path):
    from tests.conftest import LiveServer

    # API only: nothing is rendered here, and a server without the engine starts in a third of the time.
    srv = LiveServer(tmp_path / "small", "--no-worker", MUTOSCOPE_MAX_UPLOAD_BYTES=str(200_000)).start()
    try:
        big = png_bytes(10, 10) + b"\0" * 400_000
        with pytest.raises(openai.APIStatusError) as e:
            srv.client().videos.create(prompt="x", input_reference=("ref.png", big, "image/png"))
        assert e.value.status_code == 413
        with srv.http() as h:
            assert h.get("/v1/videos").json()["data"] == []  # nothing half-written
    finally:
        srv.stop()


def test_unknown_and_foreign_ids_are_404(server, client, done, other_user_key):
    with pytest.raises(openai.NotFoundError) as e:
        client.videos.retrieve("video_doesnotexist")
    assert e.value.param == "video_id"
    mallory = server.client(other_user_key)
    for call in (lambda: mallory.videos.retrieve(done.id), lambda: mallory.videos.delete(done.id),
                 lambda: mallory.videos.download_content(done.id), lambda: mallory.videos.remix(done.id, prompt="x")):
        with pytest.raises(openai.NotFoundError):
            call()
    assert done.id not in [v.id for v in mallory.videos.list()]
    assert client.videos.retrieve(done.id).status == "completed"


def test_bad_or_missing_key_is_401(server):
    with pytest.raises(openai.AuthenticationError):
        server.client("msk-wrong").videos.list()
    r = httpx.get(server.base_url + "/v1/videos")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"


def test_revoked_key_stops_working(server):
    key = server.cli("keys", "create", "--name", "temp").stdout.strip().splitlines()[-1]
    assert server.client(key).videos.list() is not None
    listing = server.cli("keys", "list").stdout
    assert key[:12] in listing and key not in listing  # only the prefix is ever shown
    server.cli("keys", "revoke", key[:12])
    with pytest.raises(openai.AuthenticationError):
        server.client(key).videos.list()


def test_extension_of_unknown_video_is_404(server):
    with server.http() as h:
        for path in ("/v1/videos/extensions", "/v1/videos/edits"):
            r = h.post(path, json={"prompt": "x", "video": {"id": "video_nope"}, "seconds": "4"})
            assert r.status_code == 404 and r.json()["error"]["param"], (path, r.text)


def test_openapi_has_the_key_scheme_create_bodies_and_unique_operation_ids(server):
    import warnings

    schema = httpx.get(server.base_url + "/openapi.json", timeout=30).json()
    assert schema["components"]["securitySchemes"]["ApiKey"] == {**schema["components"]["securitySchemes"]["ApiKey"],
                                                                "type": "http", "scheme": "bearer"}
    create = schema["paths"]["/v1/videos"]["post"]
    assert create["security"] == [{"ApiKey": []}]
    body = create["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/CreateVideoRequest"
    assert "prompt" in schema["components"]["schemas"]["CreateVideoRequest"]["properties"]
    form = body["multipart/form-data"]["schema"]["properties"]
    assert form["input_reference"]["format"] == "binary" and "prompt" in form
    assert "requestBody" in schema["paths"]["/v1/videos/edits"]["post"]
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert "head_video_content" in ids
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # building the schema again warns of nothing (no duplicate ids)
        from fastapi.openapi.utils import get_openapi

        from mutoscope.server import build_app  # noqa: F401  (the routers' import is what is checked)
        from mutoscope.api.routes import exports, videos

        get_openapi(title="t", version="1", routes=[*videos.router.routes, *exports.router.routes])
