"""The Batch API for /v1/videos, driven by the official openai SDK against a live server: input files, batches
that finish with one good and one bad line, hostile input files, cancel, and the webhooks a batch sends."""

from __future__ import annotations

import json
import sqlite3

import openai
import pytest

from tests.conftest import LiveServer, wait_for
from tests.hooks import Receiver

FAST = {"num_inference_steps": 2}
GOOD = {"prompt": "a paper boat on a pond", "size": "288x512", "seconds": "4", **FAST}
EVENTS = ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"]


def line(custom_id: str, body: dict, url: str = "/v1/videos", method: str = "POST") -> str:
    return json.dumps({"custom_id": custom_id, "method": method, "url": url, "body": body})


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("batches") / "data", MUTOSCOPE_OUTBOUND_ALLOW='["127.0.0.1"]',
                   MUTOSCOPE_MAX_BATCH_LINES="6", MUTOSCOPE_LEASE_SECONDS="4").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mallory(srv) -> str:
    return srv.cli("users", "create", "mallory").stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def hooks(srv):
    """A webhook endpoint for batch events and the receiver behind it."""
    r = Receiver()
    with srv.http() as http:
        ep = http.post("/v1/webhook_endpoints", json={"name": "batches", "url": r.url, "event_types": EVENTS}).json()
    yield r, ep["signing_secret"]
    r.httpd.shutdown()


def upload(client, lines: list[str]) -> str:
    data = ("\n".join(lines) + "\n").encode()
    f = client.files.create(file=("requests.jsonl", data, "application/jsonl"), purpose="batch")
    assert f.purpose == "batch" and f.bytes == len(data)
    return f.id


def run(client, lines: list[str], **extra):
    batch = client.batches.create(input_file_id=upload(client, lines), endpoint="/v1/videos",
                                  completion_window="24h", **extra)
    assert batch.object == "batch" and batch.endpoint == "/v1/videos" and batch.request_counts.total == len(lines)
    return batch


def finished(client, batch_id: str, timeout: float = 180):
    return wait_for(lambda: (b := client.batches.retrieve(batch_id)).status in
                    ("completed", "failed", "expired", "cancelled") and b, timeout=timeout, interval=0.5)


def jsonl(client, file_id: str | None) -> list[dict]:
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()] if file_id else []


def events(receiver, client, secret: str, batch_id: str) -> list[str]:
    got = [client.webhooks.unwrap(body, headers, secret=secret) for body, headers in list(receiver.received)]
    return [e.type for e in got if e.data.id == batch_id]


def usage(srv) -> list[tuple]:
    with sqlite3.connect(srv.data_dir / "mutoscope.db", timeout=30) as db:
        return db.execute("SELECT v.batch_custom_id, u.state FROM usage_records u JOIN videos v ON v.id = u.video_id "
                          "WHERE v.batch_id IS NOT NULL ORDER BY v.batch_custom_id").fetchall()


def test_one_good_and_one_bad_line(srv, hooks):
    client, (receiver, secret) = srv.client(), hooks
    batch = run(client, [line("good", {**GOOD, "seed": 1}), line("bad", {**GOOD, "size": "640x480"})],
                metadata={"night": "1"})
    assert batch.status in ("in_progress", "finalizing", "completed") and batch.metadata == {"night": "1"}
    done = finished(client, batch.id)
    assert done.status == "completed" and done.completed_at and done.in_progress_at
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (2, 1, 1)
    [out] = jsonl(client, done.output_file_id)
    assert out["custom_id"] == "good" and out["error"] is None and out["response"]["status_code"] == 200
    video = out["response"]["body"]
    assert video["object"] == "video" and video["status"] == "completed" and video["size"] == "288x512"
    assert client.videos.retrieve(video["id"]).status == "completed"
    assert client.videos.download_content(video["id"]).read()[4:8] == b"ftyp"
    [err] = jsonl(client, done.error_file_id)
    assert err["custom_id"] == "bad" and err["response"]["status_code"] == 400
    refusal = err["response"]["body"]["error"]
    assert refusal["param"] == "size" and "640x480" in refusal["message"]
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"
    # Charged for the video it made, nothing for the refused line; the event comes once.
    assert usage(srv) == [("good", "charged")]
    wait_for(lambda: events(receiver, client, secret, batch.id) == ["batch.completed"], timeout=30)
    assert batch.id in [b.id for b in client.batches.list(limit=5)]
    assert batch.id in [f.filename.split("_output")[0] for f in client.files.list(purpose="batch_output")]


def test_hostile_input_files_are_refused_whole_or_line_by_line(srv, hooks, mallory):
    client, (receiver, secret) = srv.client(), hooks
    with pytest.raises(openai.BadRequestError, match="at most 6") as e:
        run(client, [line(f"l{i}", GOOD) for i in range(7)])
    assert e.value.body["param"] == "input_file_id" and e.value.body["code"] == "batch_too_many_lines"
    with pytest.raises(openai.BadRequestError, match="lines 1 and 2"):
        run(client, [line("same", GOOD), line("same", GOOD)])
    with pytest.raises(openai.NotFoundError):  # another user's file is not there for this one
        client.batches.create(input_file_id=upload(srv.client(mallory), [line("x", GOOD)]),
                              endpoint="/v1/videos", completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=upload(client, [line("x", GOOD)]), endpoint="/v1/chat/completions",
                              completion_window="24h")
    theirs = srv.client(mallory).files.create(file=("a.png", b"\x89PNG", "image/png"), purpose="vision")
    deep = {"prompt": "p", "x": json.loads("[" * 40 + "]" * 40)}
    bad = ["not json at all", line("u", GOOD, url="/v1/videos/video_x/remix"), line("m", GOOD, method="GET"),
           line("d", deep), line("f", {**GOOD, "input_reference": {"file_id": theirs.id}}),
           json.dumps({"custom_id": "b", "method": "POST", "url": "/v1/videos", "body": "no"})]
    done = finished(client, run(client, bad).id)
    assert done.status == "failed" and done.failed_at and not done.output_file_id
    assert [(x.line, x.param) for x in done.errors.data] == [(1, None), (2, "url"), (3, "method"), (4, None),
                                                             (5, "input_reference.file_id"), (6, "body")]
    assert done.request_counts.failed == 6 and done.request_counts.completed == 0
    assert "No file found" in done.errors.data[4].message
    wait_for(lambda: events(receiver, client, secret, done.id) == ["batch.failed"], timeout=30)
    # A custom_id no database can store is the line's own refusal, not a failed insert that leaves the batch
    # validating and every read of it a 500.
    unstorable = json.dumps({"custom_id": "lone \ud800", "method": "POST", "url": "/v1/videos", "body": GOOD})
    refused = finished(client, run(client, [unstorable]).id)
    assert refused.status == "failed" and [(x.line, x.param) for x in refused.errors.data] == [(1, "custom_id")]
    assert client.batches.list().data  # the owner's list still reads
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        srv.client(mallory).batches.retrieve(done.id)


def test_an_admission_a_crash_interrupted_is_resumed_from_the_rows(srv):
    """A batch left `validating` by a process that died mid-admission: reading it admits only the lines not yet
    decided (line 1's refusal was written before the crash and stays as it was)."""
    import time

    client = srv.client()
    file_id = upload(client, [line("r0", {**GOOD, "size": "1x1"}), line("r1", {**GOOD, "seconds": "7"})])
    with sqlite3.connect(srv.data_dir / "mutoscope.db", timeout=30) as db:
        owner_id = db.execute("SELECT owner_id FROM files WHERE id = ?", (file_id,)).fetchone()[0]
        old = int(time.time()) - 600
        db.execute("INSERT INTO batches (id, owner_id, status, endpoint, input_file_id, completion_window, total, "
                   "created_at, expires_at) VALUES ('batch_crashed', ?, 'validating', '/v1/videos', ?, '24h', 2, ?, ?)",
                   (owner_id, file_id, old, old + 86400))
        db.execute("INSERT INTO batch_errors (batch_id, line, custom_id, status_code, error) VALUES "
                   "('batch_crashed', 0, 'r0', 400, ?)", (json.dumps({"message": "decided before the crash",
                                                                      "type": "invalid_request_error",
                                                                      "param": "size", "code": "invalid_size"}),))
    done = client.batches.retrieve("batch_crashed")
    assert done.status == "failed" and done.request_counts.failed == 2
    assert [(e.line, e.message.split(".")[0]) for e in done.errors.data][0] == (1, "decided before the crash")
    assert done.errors.data[1].line == 2 and done.errors.data[1].param == "seconds"


def test_cancel_stops_queued_lines_and_lets_the_running_one_finish(srv, hooks):
    client, (receiver, secret) = srv.client(), hooks
    slow = {**GOOD, "num_inference_steps": 12}
    batch = run(client, [line(f"c{i}", {**slow, "seed": i}) for i in range(4)])
    wait_for(lambda: any(v.status == "in_progress" for v in client.videos.list(limit=10).data), timeout=60,
             interval=0.1)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    counts = done.request_counts
    assert counts.total == 4 and counts.completed + counts.failed == 4 and counts.completed <= 1
    errors = jsonl(client, done.error_file_id)
    assert sum(e["error"]["code"] == "batch_cancelled" for e in errors) >= 3
    states = dict(usage(srv))
    assert sorted(states.get(f"c{i}") for i in range(4)).count("refunded") >= 3
    wait_for(lambda: events(receiver, client, secret, batch.id) == ["batch.cancelled"], timeout=30)
    assert client.batches.cancel(batch.id).status == "cancelled"  # again: nothing changes, no second event


def test_cli_submit_waits_with_progress_and_writes_the_results(srv, tmp_path):
    requests = tmp_path / "night.jsonl"
    requests.write_text(line("cli-good", {**GOOD, "seed": 5}) + "\n" + line("cli-bad", {**GOOD, "seconds": "5"}) + "\n")
    run_ = srv.cli("batch", "submit", str(requests), "--wait", "--metadata", "from=cli", check=False)
    assert run_.returncode == 0, run_.stderr
    assert "1 completed, 1 failed of 2" in run_.stdout and "━" in run_.stderr  # the progress bar
    [out] = [json.loads(x) for x in (tmp_path / "night.output.jsonl").read_text().splitlines()]
    [err] = [json.loads(x) for x in (tmp_path / "night.errors.jsonl").read_text().splitlines()]
    assert out["custom_id"] == "cli-good" and out["response"]["body"]["status"] == "completed"
    assert err["custom_id"] == "cli-bad" and err["response"]["body"]["error"]["param"] == "seconds"
    batch_id = run_.stdout.split()[0]
    assert srv.client().batches.retrieve(batch_id).metadata == {"from": "cli"}
    assert batch_id in srv.cli("batch", "list").stdout
    assert srv.cli("batch", "status", "batch_nope", check=False).returncode == 1
    # Cursor pages: one batch a page, newest first, each once.
    paged = [b.id for b in srv.client().batches.list(limit=1)]
    assert paged[0] == batch_id and len(paged) == len(set(paged)) >= 4


def test_the_web_library_filters_by_batch(srv):
    from tests.web.conftest import signed_in_http

    client = srv.client()
    [done] = [b for b in client.batches.list(limit=20) if b.status == "completed" and b.output_file_id][:1]
    [out] = jsonl(client, done.output_file_id)
    other = client.videos.create(prompt="not in any batch", size="288x512", extra_body=FAST)
    http, _ = signed_in_http(srv.base_url, srv.api_key)
    try:
        page = http.get("/", params={"batch": done.id}).text
        assert out["response"]["body"]["id"] in page and other.id not in page
        assert f'<option selected>{done.id}</option>' in page
        assert other.id in http.get("/").text
    finally:
        http.close()
        client.videos.delete(other.id)
