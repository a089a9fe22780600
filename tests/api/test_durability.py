"""Jobs survive restarts; the same API runs on PostgreSQL."""

from __future__ import annotations

from tests.conftest import LiveServer, wait_for

FAST = {"num_inference_steps": 2}


def test_restart_mid_queue_runs_everything(tmp_path):
    srv = LiveServer(tmp_path / "data").start()
    try:
        client = srv.client()
        first = client.videos.create(prompt="interrupted", extra_body={"num_inference_steps": 8})
        rest = [client.videos.create(prompt="queued behind it", extra_body=FAST).id]
        wait_for(lambda: client.videos.retrieve(first.id).progress > 0, timeout=120)
        srv.stop(kill=True)  # a crash: no graceful shutdown
        srv.start()
        client = srv.client()
        # The interrupted job is re-run from the start, never left in_progress forever.
        assert client.videos.retrieve(first.id).status in ("queued", "in_progress")
        for vid in [first.id, *rest]:
            assert client.videos.poll(vid).status == "completed"
        statuses = {v.id: v.status for v in client.videos.list()}
        assert set(statuses) == {first.id, *rest} and set(statuses.values()) == {"completed"}
    finally:
        srv.stop()


def test_videos_api_on_postgresql(tmp_path, pg_url):
    srv = LiveServer(tmp_path / "pg", MUTOSCOPE_DATABASE_URL=pg_url).start()
    try:
        client = srv.client()
        video = client.videos.create_and_poll(prompt="on postgres", extra_body=FAST)
        assert video.status == "completed", video.error
        assert client.videos.download_content(video.id).read()[4:8] == b"ftyp"
        more = [client.videos.create(prompt=f"pg {i}", extra_body=FAST).id for i in range(2)]
        page = client.videos.list(limit=2)
        assert [v.id for v in page.data] == more[::-1] and page.has_more
        assert client.videos.delete(more[0]).deleted
        for vid in more[1:]:
            assert client.videos.poll(vid).status == "completed"
    finally:
        srv.stop()
