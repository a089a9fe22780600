"""The scale-out mode end to end: two API processes and two Celery workers on separate data folders, sharing
nothing but PostgreSQL, Redis and an S3 server. Twelve jobs go in through both APIs; one worker is killed
with SIGKILL while it renders. Every job must end exactly once, be charged at most once, report exactly
one final webhook event, and leave exactly its own objects in the bucket and nothing in the workers' folders."""

from __future__ import annotations

import base64
import json
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from tests.conftest import LiveServer, stop_process, wait_for

pytestmark = pytest.mark.slow

JOBS = 12
LEASE = 3


class Receiver:
    """A webhook receiver on loopback that records every event it gets."""

    def __init__(self):
        events = self.events = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                events.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _lease_holders(pg_url: str) -> dict[str, str]:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT id, lease_owner FROM videos WHERE status = 'in_progress' AND progress > 0")
        return {vid: owner for vid, owner in rows}


def test_two_apis_two_workers_one_killed(tmp_path, pg_url, broker_url, s3_server, receiver):
    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    common = {"MUTOSCOPE_DATABASE_URL": pg_url, "MUTOSCOPE_RUNNER": "celery", "MUTOSCOPE_BROKER_URL": broker_url,
              "MUTOSCOPE_LEASE_SECONDS": str(LEASE), "MUTOSCOPE_MAX_ATTEMPTS": "3",
              "MUTOSCOPE_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
              "MUTOSCOPE_OUTBOUND_ALLOW": json.dumps([f"127.0.0.1:{receiver.port}"]), **s3_server.env(prefix)}
    api1 = LiveServer(tmp_path / "api1", **common).start()  # runs the migrations and makes the owner
    api2 = LiveServer(tmp_path / "api2", **common).start()
    key = api1.api_key
    workers: dict[str, subprocess.Popen] = {}
    for name in ("w1", "w2"):
        env = dict(api1.env, MUTOSCOPE_DATA_DIR=str(tmp_path / name))
        workers[name] = subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"], env=env,
                                         stdout=open(tmp_path / f"{name}.log", "ab"), stderr=subprocess.STDOUT)
    try:
        clients = [api1.client(key), api2.client(key)]
        hook = clients[0].webhooks.create(name="all", url=f"http://127.0.0.1:{receiver.port}/hook",
                                          event_types=["video.completed", "video.failed"])
        assert hook.id
        ids = [clients[i % 2].videos.create(prompt=f"job {i}", extra_body={"num_inference_steps": 6, "seed": i}).id
               for i in range(JOBS)]

        # Kill w1 with SIGKILL while it holds a job it has started rendering.
        w1_pid = str(workers["w1"].pid)
        victim = wait_for(lambda: next((vid for vid, owner in _lease_holders(pg_url).items()
                                        if owner and owner.split(":")[2] == w1_pid), None), timeout=300, interval=0.1)
        workers["w1"].send_signal(signal.SIGKILL)
        workers["w1"].wait()
        killed_at = time.time()

        finals = {}
        for vid in ids:
            v = clients[1].videos.poll(vid, poll_interval_ms=300)
            finals[vid] = v
            assert v.status == "completed" or (v.status == "failed" and v.error.code == "worker_lost"), v.error
        # The killed worker's job was taken back after its lease ran out and finished elsewhere.
        assert finals[victim].status == "completed"
        with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            assert conn.execute("SELECT count(*) FROM videos WHERE status = 'in_progress'").fetchone()[0] == 0
            attempts = conn.execute("SELECT attempts FROM videos WHERE id = %s", (victim,)).fetchone()[0]
        assert attempts == 2 and time.time() - killed_at > LEASE * 0.5

        completed = [vid for vid, v in finals.items() if v.status == "completed"]
        # Every completed video downloads with Range from either API.
        for i, vid in enumerate(completed):
            with (api1 if i % 2 else api2).http(key) as h:
                r = h.get(f"/v1/videos/{vid}/content", headers={"Range": "bytes=0-99"})
                assert r.status_code == 206 and len(r.content) == 100 and r.content[4:8] == b"ftyp"

        # Charged exactly the seconds of completed jobs: nothing twice, no reservation left behind.
        with api2.http(key) as h:
            usage = h.get("/v1/usage").json()
        assert usage["spent"] == pytest.approx(sum(float(finals[v].seconds) for v in completed))
        assert (usage["reserved"], usage["active_jobs"]) == (0.0, 0)

        # Exactly one final event per job (both APIs deliver from the one outbox).
        wait_for(lambda: len(receiver.events) >= JOBS, timeout=60)
        time.sleep(1.5)
        per_job = Counter(e["data"]["id"] for e in receiver.events)
        assert per_job == Counter({vid: 1 for vid in ids})
        assert {e["type"] for e in receiver.events if e["data"]["id"] in completed} == {"video.completed"}

        # The bucket holds exactly each completed video's published files; the workers' folders hold none.
        with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            published = dict(conn.execute("SELECT id, assets_attempt FROM videos WHERE status = 'completed'"))
        assert published[victim] == 2
        expected = sorted(f"{prefix}/videos/{vid}/a{published[vid]}/{name}" for vid in completed
                          for name in ("video.mp4", "thumbnail.webp", "spritesheet.jpg"))
        assert [k for k in s3_server.keys(f"{prefix}/videos/")] == expected
        for name in ("w1", "w2", "api1", "api2"):
            stored = [p for p in (tmp_path / name).rglob("*") if p.is_file() and "videos" in p.parts]
            assert stored == [], name
    finally:
        for w in workers.values():
            stop_process(w)
        api2.stop()
        api1.stop()
