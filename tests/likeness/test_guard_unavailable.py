"""The likeness guard fails closed: a live server whose face detection cannot run refuses every input
image and video that could show a person, unless the operator turned the guard off.

Detection is broken the way a bad install breaks it: the server process's `import dlib` fails (a
`sitecustomize` on its PYTHONPATH installs a finder whose loader raises ImportError, like a dlib wheel
whose shared library cannot load). Nothing in Mutoscope is replaced; the guard finds out by itself.
"""

from __future__ import annotations

import io
import os

import numpy as np
import openai
import pytest
from PIL import Image

from tests.conftest import LiveServer
from tests.likeness.conftest import need

FAST = {"num_inference_steps": 2}
PORTRAIT = "720x1280"

BLOCK_DLIB = '''
import importlib.abc, importlib.util, sys


class _Broken(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("libdlib.so: cannot open shared object file (simulated by the test)")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, _Broken()) if name == "dlib" else None


sys.meta_path.insert(0, _Finder())
'''


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def faces() -> dict[str, bytes]:
    need("skimage")
    import skimage.data

    return {"astronaut": _png(skimage.data.astronaut()), "cat": _png(skimage.data.chelsea())}


def _broken_server(tmp_path_factory, name: str, **env: str) -> LiveServer:
    site = tmp_path_factory.mktemp(f"{name}-site")
    (site / "sitecustomize.py").write_text(BLOCK_DLIB)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return LiveServer(tmp_path_factory.mktemp(name) / "data", PYTHONPATH=path, **env).start()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    s = _broken_server(tmp_path_factory, "guard-broken")
    yield s
    s.stop()


def test_without_face_detection_images_are_refused(guarded, faces):
    with guarded.http() as h:
        assert h.get("/v1/service").json()["likeness_guard"] == "unavailable"
    client = guarded.client()
    # A face and a cat alike: without a detector nothing tells them apart.
    for image in (faces["astronaut"], faces["cat"]):
        with pytest.raises(openai.InternalServerError) as e:
            client.videos.create(prompt="a portrait comes alive", seconds="4", size=PORTRAIT, extra_body=FAST,
                                 input_reference=("face.png", image, "image/png"))
        assert e.value.status_code == 503
        assert e.value.response.headers["x-should-retry"] == "false"  # retrying cannot help: the SDK won't
        err = e.value.response.json()["error"]
        assert (err["code"], err["param"]) == ("likeness_guard_unavailable", "input_reference"), err
        assert "/" not in err["message"] and "dlib" not in err["message"]  # no server paths, no internals
    assert client.videos.list().data == []  # nothing was queued or charged


def test_without_face_detection_uploaded_videos_are_refused(guarded):
    from mutoscope.media import encode_mp4

    noise = io.BytesIO()
    encode_mp4(noise, np.random.default_rng(1).integers(0, 255, (48, 96, 128, 3), dtype=np.uint8), 12)
    client = guarded.client()
    with pytest.raises(openai.InternalServerError) as e:
        client.videos.edit(prompt="in watercolour", video=("clip.mp4", noise.getvalue(), "video/mp4"),
                           extra_body=FAST)
    err = e.value.response.json()["error"]
    assert (err["code"], err["param"]) == ("likeness_guard_unavailable", "video"), err
    with guarded.http() as h:
        r = h.post("/v1/videos/characters", data={"name": "noise"},
                   files={"video": ("clip.mp4", noise.getvalue(), "video/mp4")})
    assert r.status_code == 503 and r.json()["error"]["code"] == "likeness_guard_unavailable", r.text


def test_without_face_detection_text_only_still_works(guarded):
    client = guarded.client()
    video = client.videos.create(prompt="a lighthouse at dusk", seconds="4", extra_body=FAST)
    assert video.status in ("queued", "in_progress")
    client.videos.delete(video.id)
    log = guarded.log.read_text()
    assert "likeness guard cannot detect faces" in log and "ImportError" in log


def test_operator_can_turn_the_guard_off(tmp_path_factory, faces):
    off = _broken_server(tmp_path_factory, "guard-off", MUTOSCOPE_LIKENESS_GUARD="off")
    try:
        with off.http() as h:
            assert h.get("/v1/service").json()["likeness_guard"] == "off"
        client = off.client()
        video = client.videos.create(prompt="a portrait comes alive", seconds="4", size=PORTRAIT, extra_body=FAST,
                                     input_reference=("face.png", faces["astronaut"], "image/png"))
        assert video.status in ("queued", "in_progress")
        client.videos.delete(video.id)
        assert "likeness guard is OFF" in off.log.read_text()
    finally:
        off.stop()
