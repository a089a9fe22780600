"""Bounded bodies and bounded media, each finding reproduced against a live server on default settings.

Nothing here generates a video: every case is refused at create, which is the point. One server for
the module; the chunked body goes over a raw socket because an HTTP client sends its whole body
before it reads the answer, and the point is that the server answers long before the body ends.
"""

from __future__ import annotations

import io
import select
import socket
import time

import numpy as np
import pytest

from mutoscope.media import encode_mp4
from tests.conftest import LiveServer, serve_live
from tests.media.static_clips import static_clip

DEEP = "[" * 100000


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from serve_live(tmp_path_factory, "bounds")


@pytest.fixture(scope="module")
def http(srv):
    with srv.http() as h:
        yield h


def error_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert "/" not in body["error"]["message"] and "Traceback" not in body["error"]["message"]
    return body["error"]


def video_count(http) -> int:
    return len(http.get("/v1/videos", params={"limit": 100}).json()["data"])


def clip_bytes() -> bytes:
    """5 s, long enough for every duration the test model edits, so only truncation can refuse it."""
    t = np.linspace(0, 1, 120)[:, None, None, None]
    frames = (np.random.default_rng(1).integers(0, 255, (1, 96, 128, 3)) * t).astype(np.uint8)
    buf = io.BytesIO()
    encode_mp4(buf, frames, 24)
    return buf.getvalue()


# Routes that read a JSON body: OpenAI's, ours, the admin API, and the web app's sign-in form.
JSON_ROUTES = ["/v1/videos", "/v1/videos/extensions", "/v1/videos/edits", "/v1/videos/video_x/remix",
               "/v1/files", "/v1/webhook_endpoints", "/v1/admin/users", "/v1/admin/service/sunset",
               "/v1/cameos/cameo_x/grants", "/signin"]


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_deeply_nested_json_is_400_invalid_json(http, path):
    r = http.post(path, content=DEEP, headers={"Content-Type": "application/json", "Accept": "application/json"})
    err = error_of(r, 400)
    assert err["code"] == "invalid_json" and "64" in err["message"]


def test_nesting_within_the_bound_still_parses(http):
    # 60 levels inside an ignored extra field: parsed, then refused for what it is (a missing prompt).
    body = '{"deep": ' + "[" * 60 + "]" * 60 + ', "note": "[[[[ in a string do not count"}'
    err = error_of(http.post("/v1/videos", content=body, headers={"Content-Type": "application/json"}), 400)
    assert err["param"] == "prompt"


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def send_chunked(srv: LiveServer, path: str, content_type: str, total: int, chunk: int = 256 * 1024,
                 prefix: bytes = b"", headers: str = "") -> tuple[bytes, int, int]:
    """POST a chunked body of `total` bytes made as it goes; stop once the server answers.
    Returns (the response bytes, how many body bytes were sent, the server's highest RSS meanwhile in KB)."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {srv.api_key}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n{headers}\r\n").encode()
    sock.sendall(head)
    sent, block, peak = 0, b"x" * chunk, 0
    try:
        while sent < total:
            peak = max(peak, rss_kb(srv.proc.pid))
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: stop generating
            data = prefix if sent == 0 and prefix else block
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            sent += len(data)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # it answered and closed while we were still writing
    answer = read_answer(sock)
    return answer, sent, max(peak, rss_kb(srv.proc.pid))


def read_answer(sock: socket.socket) -> bytes:
    """The status line, headers and JSON body of one response (they may arrive in separate reads)."""
    answer = b""
    deadline = time.time() + 30
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        if time.time() > deadline or not select.select([sock], [], [], 5)[0]:
            break
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            break
        if not part:
            break
        answer += part
    sock.close()
    return answer


@pytest.mark.parametrize("kind", ["json", "multipart", "idempotent"])
def test_chunked_300_mb_body_is_refused_at_the_limit(srv, http, kind):
    """`idempotent`: the same JSON body with an Idempotency-Key, whose check holds the body to compare it."""
    total = 300 * 1024 * 1024
    extra = "Idempotency-Key: big-body-1\r\n" if kind == "idempotent" else ""
    if kind in ("json", "idempotent"):
        path, ctype, prefix = "/v1/videos", "application/json", b'{"prompt": "'
    else:
        boundary = "bounds"
        path, ctype = "/v1/videos/edits", f"multipart/form-data; boundary={boundary}"
        prefix = (f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n'
                  "Content-Type: video/mp4\r\n\r\n").encode()
    before = rss_kb(srv.proc.pid)
    answer, sent, peak = send_chunked(srv, path, ctype, total, prefix=prefix, headers=extra)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"payload_too_large"' in answer
    # It stopped reading at the 50 MB limit (plus what the socket buffers held), not after 300 MB.
    assert sent < 120 * 1024 * 1024, sent
    assert peak - before < 100 * 1024, (before, peak)  # KB: well under the 300 MB it was offered
    assert http.get("/health").status_code == 200


def test_content_length_over_the_limit_is_refused_before_reading(srv):
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    sock.sendall((f"POST /v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.api_key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {300 * 1024 * 1024}\r\n\r\n{{").encode())
    answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer


@pytest.mark.parametrize("seconds", ["abc", "", "4s"])
def test_non_numeric_extension_seconds_is_400_naming_seconds(http, seconds):
    before = video_count(http)
    r = http.post("/v1/videos/extensions", json={"video": {"id": "video_x"}, "prompt": "more", "seconds": seconds})
    err = error_of(r, 400)
    assert err["param"] == "seconds" and err["code"] == "invalid_value"
    assert video_count(http) == before


@pytest.mark.parametrize("seconds", ["abc", "4s"])
def test_non_numeric_seconds_elsewhere_is_400_too(http, seconds):
    err = error_of(http.post("/v1/videos", json={"prompt": "p", "seconds": seconds}), 400)
    assert err["param"] == "seconds"
    r = http.post("/v1/videos/edits", data={"prompt": "p", "seconds": seconds},
                  files={"video": ("a.mp4", clip_bytes(), "video/mp4")})
    assert error_of(r, 400)["param"] == "seconds"


@pytest.mark.parametrize("route", ["/v1/videos/characters", "/v1/videos/edits", "/v1/cameos"])
@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_mp4_is_400_naming_video(http, route, cut):
    data = clip_bytes()
    fields = {"name": "Boat", "prompt": "make it night", "handle": "truncated_test", "challenge_id": "chal_x"}
    before = video_count(http)
    r = http.post(route, data=fields, files={"video": ("clip.mp4", data[: int(len(data) * cut)], "video/mp4")})
    err = error_of(r, 400)
    assert err["param"] == "video" and err["code"] == "invalid_video", err
    assert video_count(http) == before


def test_corrupt_image_is_400_naming_input_reference(http):
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 10, 10)).save(png, format="PNG")
    r = http.post("/v1/videos", data={"prompt": "p"},
                  files={"input_reference": ("a.png", png.getvalue()[:80], "image/png")})
    err = error_of(r, 400)
    assert err["param"] == "input_reference" and err["code"] == "invalid_image"


def test_ten_minutes_of_static_1080p_is_refused_before_queueing(http, tmp_path):
    path = static_clip(tmp_path / "ten-minutes.mp4", seconds=600, width=1920, height=1080)
    assert path.stat().st_size < 1024 * 1024  # a tiny upload that claims 14,400 frames of 1080p
    before = video_count(http)
    r = http.post("/v1/videos/edits", data={"prompt": "make it night"},
                  files={"video": ("ten.mp4", path.read_bytes(), "video/mp4")})
    err = error_of(r, 400)
    assert err["param"] == "video" and err["code"] == "invalid_video"
    assert "max_input_seconds" in err["message"] and "600" in err["message"]
    assert video_count(http) == before


def test_an_edit_over_the_job_memory_budget_is_refused_at_create(tmp_path):
    # 1 GiB: a 4 s 1280x720 edit needs 3 x 96 output frames plus its source frames, about 0.8 GiB at the
    # test model's 24 fps, and 8 s twice that. No job is queued for the refused one.
    small = LiveServer(tmp_path / "data", "--no-worker", MUTOSCOPE_JOB_MEMORY_BUDGET_BYTES=str(1024**3)).start()
    try:
        with small.http() as h:
            clip = clip_bytes()
            r = h.post("/v1/videos/edits", data={"prompt": "p", "seconds": "8", "size": "1280x720"},
                       files={"video": ("a.mp4", clip, "video/mp4")})
            err = error_of(r, 400)
            assert err["code"] == "memory_budget_exceeded" and "job_memory_budget_bytes" in err["message"]
            assert video_count(h) == 0
    finally:
        small.stop()


def test_every_route_reads_its_body_through_read_body():
    """No route declares a body FastAPI would parse itself: every body goes through the bounded reader."""
    from fastapi.routing import APIRoute

    from mutoscope.api.routes import account, cameos, exports, files, models, verify, videos, webhooks
    from mutoscope.web.routes import router as web

    routers = [account.router, account.admin, cameos.router, exports.router, files.router, models.router,
               verify.router, videos.router, webhooks.router, web]
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 40
    assert [r.path for r in routes if r.body_field is not None] == []
