"""A batch on PostgreSQL with an API process and two database-queue workers, one of them killed with SIGKILL
while it renders a line: the batch still finishes, every line ends once, nothing is charged twice, the counts
are exact and `batch.completed` is sent once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.api.test_batches import FAST, Receiver, events, finished, line, upload
from tests.conftest import LiveServer, stop_process, wait_for

pytestmark = pytest.mark.slow


def test_a_batch_outlives_a_killed_worker(tmp_path, pg_url):
    api = LiveServer(tmp_path / "data", "--no-worker", MUTOSCOPE_DATABASE_URL=pg_url, MUTOSCOPE_LEASE_SECONDS="3",
                     MUTOSCOPE_OUTBOUND_ALLOW='["127.0.0.1"]').start()
    workers = [subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"], env=api.env,
                                stdout=open(tmp_path / f"worker{i}.log", "wb"), stderr=subprocess.STDOUT)
               for i in range(2)]
    receiver = Receiver()
    db = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        client = api.client()
        with api.http() as http:
            endpoint = {"name": "b", "url": receiver.url, "event_types": ["batch.completed"]}
            secret = http.post("/v1/webhook_endpoints", json=endpoint).json()["signing_secret"]
        body = {"prompt": "a lantern on a lake", "size": "288x512", "seconds": "4", "num_inference_steps": 10}
        lines = [line(f"l{i}", {**body, "seed": i}) for i in range(3)] + [line("bad", {**FAST, "prompt": ""})]
        batch = client.batches.create(input_file_id=upload(client, lines), endpoint="/v1/videos",
                                      completion_window="24h")

        def holder() -> int | None:
            with db.connect() as c:
                owner = c.execute(text("SELECT lease_owner FROM videos WHERE batch_id = :b AND status = 'in_progress' "
                                       "AND progress > 0 LIMIT 1"), {"b": batch.id}).scalar()
            return int(owner.split(":")[2]) if owner else None

        pid = wait_for(holder, timeout=180, interval=0.2)
        [victim] = [w for w in workers if w.pid == pid]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        done = finished(client, batch.id, timeout=300)
        assert done.status == "completed"
        assert done.request_counts.model_dump() == {"completed": 3, "failed": 1, "total": 4}
        out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
        assert sorted(o["custom_id"] for o in out) == ["l0", "l1", "l2"]
        with db.connect() as c:
            rows = c.execute(text("SELECT v.batch_custom_id, v.status, v.attempts, u.state FROM videos v JOIN "
                                  "usage_records u ON u.video_id = v.id WHERE v.batch_id = :b"), {"b": batch.id}).all()
        # One video per line, each charged once; the killed worker's line ran again.
        assert sorted((r[0], r[1], r[3]) for r in rows) == [(f"l{i}", "completed", "charged") for i in range(3)]
        assert max(r[2] for r in rows) == 2
        wait_for(lambda: events(receiver, client, secret, batch.id) == ["batch.completed"], timeout=30)
    finally:
        for w in workers:
            stop_process(w)
        api.stop()
        receiver.httpd.shutdown()
        db.dispose()
