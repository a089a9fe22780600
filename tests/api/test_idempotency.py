"""Idempotency-Key: the official SDK retries a create whose answer was lost, and the retry creates nothing.

A loopback proxy between the SDK and a live server forwards the first POST to the server, lets the server
queue the job and answer, then drops the connection instead of passing the answer on: exactly what a client
sees when a load balancer times out. The SDK retries by itself; with the same key it must get the first
answer, and the account must hold one job and one charge."""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import LiveServer

FAST = {"num_inference_steps": 2}
SHORT = {"seconds": "4", "size": "512x288"}


class DroppingProxy:
    """Forwards every connection to the server; the first POST of each Idempotency-Key gets its request
    through and its answer swallowed (the connection closes). The tries after it pass."""

    def __init__(self, upstream_port: int):
        self.upstream, self.dropped, self.seen = upstream_port, 0, set()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream))
        drop = threading.Event()

        def to_server() -> None:
            try:
                while data := client.recv(65536):
                    key = re.search(rb"(?im)^idempotency-key: *(\S+)", data)
                    if data.startswith(b"POST ") and key:
                        with self.lock:
                            if key.group(1) not in self.seen:
                                self.seen.add(key.group(1))
                                self.dropped += 1
                                drop.set()
                    up.sendall(data)
            except OSError:
                pass

        threading.Thread(target=to_server, daemon=True).start()
        try:
            while data := up.recv(65536):
                if drop.is_set():  # the server answered: the client never hears it
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("idem") / "data").start(timeout=300)
    yield srv
    srv.stop()


def _count(live: LiveServer) -> int:
    return len(live.http().get("/v1/videos", params={"limit": 100}).json()["data"])


def _usage(live: LiveServer) -> dict:
    return live.http().get("/v1/usage").json()


def test_the_sdk_s_retry_after_a_lost_answer_creates_one_job(live):
    proxy = DroppingProxy(live.port)
    try:
        sdk = OpenAI(base_url=proxy.url + "/v1", api_key=live.api_key, max_retries=2, timeout=60)
        before, usage_before = _count(live), _usage(live)
        key = f"create-{uuid.uuid4()}"
        video = sdk.videos.create(prompt="made once, answered twice", **SHORT, extra_body=FAST,
                                  extra_headers={"Idempotency-Key": key})
        assert proxy.dropped == 1  # the first answer was lost and the SDK retried
        assert _count(live) == before + 1
        done = live.client().videos.poll(video.id, poll_interval_ms=200)
        assert done.status == "completed", done.error
        usage = _usage(live)
        assert usage["spent"] - usage_before["spent"] == float(done.seconds)  # charged once

        # Asked again with the same key and body: the first answer, replayed, and still one job.
        raw = live.client().videos.with_raw_response.create(prompt="made once, answered twice", **SHORT,
                                                             extra_body=FAST, extra_headers={"Idempotency-Key": key})
        assert raw.headers["idempotent-replayed"] == "true" and raw.parse().id == video.id
        assert _count(live) == before + 1
        # The same key with another request is refused, not run.
        with pytest.raises(openai.UnprocessableEntityError) as e:
            live.client().videos.create(prompt="something else", **SHORT, extra_body=FAST,
                                        extra_headers={"Idempotency-Key": key})
        assert e.value.body["code"] == "idempotency_key_reused"
        assert _count(live) == before + 1
    finally:
        proxy.close()


def test_keys_belong_to_an_account(live):
    other = live.cli("users", "create", "olga").stdout.strip().splitlines()[-1]
    key = f"shared-{uuid.uuid4()}"
    mine = live.client().videos.create(prompt="one key, two accounts", **SHORT, extra_body=FAST,
                                       extra_headers={"Idempotency-Key": key})
    theirs = live.client(other).videos.create(prompt="one key, two accounts", seconds="4", size="1280x720",
                                              extra_body=FAST,
                                              extra_headers={"Idempotency-Key": key})
    assert mine.id != theirs.id
    with pytest.raises(openai.NotFoundError):
        live.client(other).videos.retrieve(mine.id)


def test_multipart_creates_and_remixes_and_exports_are_idempotent_too(live):
    """A multipart body is built again for each try with a new boundary; it is still the same request."""
    client = live.client()
    source = client.videos.create_and_poll(prompt="a source to remix", **SHORT, extra_body=FAST)
    assert source.status == "completed", source.error
    proxy = DroppingProxy(live.port)
    try:
        sdk = OpenAI(base_url=proxy.url + "/v1", api_key=live.api_key, max_retries=2, timeout=60)
        before = _count(live)
        remix = sdk.videos.remix(source.id, prompt="the same, at dusk", extra_headers={"Idempotency-Key": f"r-{uuid.uuid4()}"})
        png = _png()
        framed = sdk.videos.create(prompt="from a first frame", **SHORT, input_reference=("f.png", png, "image/png"),
                                   extra_headers={"Idempotency-Key": f"m-{uuid.uuid4()}"})
        assert _count(live) == before + 2 and remix.id != framed.id
        exports_before = len(live.http().get("/v1/exports").json()["data"])
        raw = sdk.with_options(max_retries=2).post("/exports", body={}, cast_to=httpx.Response,
                                                    options={"headers": {"Idempotency-Key": f"e-{uuid.uuid4()}"}})
        assert raw.status_code == 200
        assert proxy.dropped == 3
        assert len(live.http().get("/v1/exports").json()["data"]) == exports_before + 1
    finally:
        proxy.close()


def test_a_retried_batch_creates_one_batch(live):
    client = live.client()
    line = {"custom_id": "only", "method": "POST", "url": "/v1/videos",
            "body": {"prompt": "one line, one batch", **SHORT, **FAST}}
    upload = client.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch")
    proxy = DroppingProxy(live.port)
    try:
        sdk = OpenAI(base_url=proxy.url + "/v1", api_key=live.api_key, max_retries=2, timeout=60)
        before = len(client.batches.list().data)
        batch = sdk.batches.create(input_file_id=upload.id, endpoint="/v1/videos", completion_window="24h",
                                   extra_headers={"Idempotency-Key": f"b-{uuid.uuid4()}"})
        assert proxy.dropped == 1
        assert [b.id for b in client.batches.list().data].count(batch.id) == 1
        assert len(client.batches.list().data) == before + 1
        client.batches.cancel(batch.id)
    finally:
        proxy.close()


def test_without_a_key_nothing_changes_and_bad_keys_are_refused(live):
    http = live.http()
    r = http.post("/v1/videos", json={"prompt": "no key", **SHORT, **FAST}, headers={"Idempotency-Key": "x" * 256})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_idempotency_key"
    a = http.post("/v1/videos", json={"prompt": "no key", **SHORT, **FAST}).json()
    b = http.post("/v1/videos", json={"prompt": "no key", **SHORT, **FAST}).json()
    assert a["id"] != b["id"]


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (512, 288), (40, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()
